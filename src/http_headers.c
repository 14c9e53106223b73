/*-------------------------------------------------------------------------
 *
 * http_headers.c
 *		Pure-C parsing of pagination and rate-limit headers.
 *
 * These functions read bytes that come straight from a remote server, so
 * they are written to be fuzzed: no postgres.h, no allocation, no locale
 * (ASCII case folding only), no reads past the terminating NUL, and a
 * definite answer (a value or "no") for every input.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "http_headers.h"

#include <string.h>

/* ASCII-only helpers: the C library's versions depend on the locale */
static inline char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c + ('a' - 'A')) : c;
}

static inline bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * span_equals_ci
 *
 * Compares a (start, length) span of header text with a lowercase word.
 */
static bool
span_equals_ci(const char *s, size_t len, const char *word)
{
	size_t		wlen = strlen(word);

	if (len != wlen)
		return false;
	for (size_t i = 0; i < len; i++)
		if (ascii_lower(s[i]) != word[i])
			return false;
	return true;
}

/*
 * rel_has_next
 *
 * A rel value is a space-separated list of relation types ("next last" is
 * legal), so look for "next" as a whole word of the list.
 */
static bool
rel_has_next(const char *s, size_t len)
{
	size_t		i = 0;

	while (i < len)
	{
		size_t		start;

		while (i < len && (is_ows(s[i])))
			i++;
		start = i;
		while (i < len && !is_ows(s[i]))
			i++;
		if (span_equals_ci(s + start, i - start, "next"))
			return true;
	}
	return false;
}

/*
 * emh_link_next
 *
 * RFC 8288 Link header: comma-separated "<uri>; param=value" entries where
 * values may be quoted strings that contain commas or semicolons.  The URL
 * is copied only if it holds no control characters or blanks, since it
 * will be requested verbatim.
 */
bool
emh_link_next(const char *link, char *out, size_t outlen)
{
	const char *p = link;

	if (link == NULL || out == NULL || outlen == 0)
		return false;

	for (;;)
	{
		const char *url;
		size_t		url_len;
		bool		is_next = false;

		while (is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			return false;
		if (*p != '<')
			return false;
		url = ++p;
		while (*p != '\0' && *p != '>')
			p++;
		if (*p != '>')
			return false;
		url_len = (size_t) (p - url);
		p++;

		/* parameters */
		for (;;)
		{
			const char *name;
			size_t		name_len;
			const char *value = NULL;
			size_t		value_len = 0;

			while (is_ows(*p))
				p++;
			if (*p != ';')
				break;
			p++;
			while (is_ows(*p))
				p++;
			name = p;
			while (*p != '\0' && *p != '=' && *p != ';' && *p != ',' && !is_ows(*p))
				p++;
			name_len = (size_t) (p - name);
			while (is_ows(*p))
				p++;
			if (*p == '=')
			{
				p++;
				while (is_ows(*p))
					p++;
				if (*p == '"')
				{
					value = ++p;
					while (*p != '\0' && *p != '"')
					{
						if (*p == '\\' && p[1] != '\0')
							p++;
						p++;
					}
					if (*p != '"')
						return false;	/* unterminated quoted string */
					value_len = (size_t) (p - value);
					p++;
				}
				else
				{
					value = p;
					while (*p != '\0' && *p != ';' && *p != ',' && !is_ows(*p))
						p++;
					value_len = (size_t) (p - value);
				}
			}
			if (value != NULL && span_equals_ci(name, name_len, "rel") &&
				rel_has_next(value, value_len))
				is_next = true;
		}

		if (is_next)
		{
			if (url_len == 0 || url_len >= outlen)
				return false;
			for (size_t i = 0; i < url_len; i++)
			{
				unsigned char c = (unsigned char) url[i];

				if (c <= 0x20 || c == 0x7f)
					return false;
			}
			memcpy(out, url, url_len);
			out[url_len] = '\0';
			return true;
		}

		if (*p == ',')
			continue;
		if (*p == '\0')
			return false;
		return false;			/* garbage after an entry */
	}
}

/*
 * emh_parse_int64
 *
 * strtoll accepts hexadecimal prefixes, leading zeros with "0x", locale
 * digits and silently saturates; headers need the plain decimal subset.
 */
bool
emh_parse_int64(const char *s, int64_t *out)
{
	bool		negative = false;
	uint64_t	v = 0;
	int			digits = 0;

	if (s == NULL)
		return false;
	while (is_ows(*s))
		s++;
	if (*s == '+' || *s == '-')
	{
		negative = (*s == '-');
		s++;
	}
	while (is_digit(*s))
	{
		if (v > (uint64_t) INT64_MAX / 10)
			return false;
		v = v * 10 + (uint64_t) (*s - '0');
		if (v > (uint64_t) INT64_MAX)
			return false;
		digits++;
		s++;
	}
	while (is_ows(*s))
		s++;
	if (digits == 0 || *s != '\0')
		return false;
	*out = negative ? -(int64_t) v : (int64_t) v;
	return true;
}

/*
 * days_from_civil
 *
 * Days since 1970-01-01 of a proleptic Gregorian date; timegm() is not
 * standard C and mktime() depends on the process time zone.
 */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t		era;
	int64_t		yoe;
	int64_t		doy;
	int64_t		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* read exactly n digits */
static bool
fixed_digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!is_digit((*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/*
 * emh_parse_http_date
 *
 * Only the IMF-fixdate form that RFC 9110 requires senders to produce.
 */
bool
emh_parse_http_date(const char *s, int64_t *epoch)
{
	static const char *const months[] = {
		"jan", "feb", "mar", "apr", "may", "jun",
		"jul", "aug", "sep", "oct", "nov", "dec"
	};
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	const char *p = s;
	int			day,
				month = -1,
				year,
				hh,
				mm,
				ss;

	if (s == NULL)
		return false;
	while (is_ows(*p))
		p++;
	/* day name: three letters and a comma */
	for (int i = 0; i < 3; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')))
			return false;
	p += 3;
	if (*p++ != ',' || *p++ != ' ')
		return false;
	if (!fixed_digits(&p, 2, &day) || *p++ != ' ')
		return false;
	for (int i = 0; i < 12; i++)
	{
		if (p[0] != '\0' && p[1] != '\0' && p[2] != '\0' &&
			span_equals_ci(p, 3, months[i]))
		{
			month = i + 1;
			break;
		}
	}
	if (month < 0)
		return false;
	p += 3;
	if (*p++ != ' ' || !fixed_digits(&p, 4, &year) || *p++ != ' ')
		return false;
	if (!fixed_digits(&p, 2, &hh) || *p++ != ':' ||
		!fixed_digits(&p, 2, &mm) || *p++ != ':' ||
		!fixed_digits(&p, 2, &ss) || *p++ != ' ')
		return false;
	if (!(p[0] == 'G' && p[1] == 'M' && p[2] == 'T'))
		return false;
	p += 3;
	while (is_ows(*p))
		p++;
	if (*p != '\0')
		return false;
	if (day < 1 || day > mdays[month - 1] || hh > 23 || mm > 59 || ss > 60)
		return false;
	*epoch = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
	return true;
}

/*
 * delay_until
 *
 * target - now in seconds, or false when the difference does not fit in
 * 64 bits: a header (up to 2^63 - 1) or a clock far from any real instant
 * must give "no answer", not a signed overflow.
 */
static bool
delay_until(int64_t target, int64_t now, int64_t *delay)
{
	if ((now < 0 && target > INT64_MAX + now) ||
		(now > 0 && target < INT64_MIN + now))
		return false;
	*delay = target - now;
	return true;
}

bool
emh_retry_after_seconds(const char *value, int64_t now, int64_t *delay)
{
	int64_t		v;

	if (value == NULL)
		return false;
	if (emh_parse_int64(value, &v))
	{
		if (v < 0)
			return false;
		*delay = v;
		return true;
	}
	if (emh_parse_http_date(value, &v))
		return delay_until(v, now, delay);
	return false;
}

bool
emh_reset_seconds(const char *value, int64_t now, int64_t *delay)
{
	int64_t		v;

	if (!emh_parse_int64(value, &v) || v < 0)
		return false;
	if (v >= EMH_EPOCH_THRESHOLD)
		return delay_until(v, now, delay);
	*delay = v;
	return true;
}

typedef struct UrlOrigin
{
	bool		https;
	const char *host;
	size_t		host_len;
	long		port;
} UrlOrigin;

/*
 * parse_origin
 *
 * Just enough of RFC 3986 to find scheme, host and port; anything unusual
 * (userinfo, a bad port, control characters) makes the URL unusable.
 */
static bool
parse_origin(const char *url, UrlOrigin *o)
{
	const char *p;
	const char *end;

	if (url == NULL)
		return false;
	if (strlen(url) >= 7 && span_equals_ci(url, 7, "http://"))
	{
		o->https = false;
		p = url + 7;
	}
	else if (strlen(url) >= 8 && span_equals_ci(url, 8, "https://"))
	{
		o->https = true;
		p = url + 8;
	}
	else
		return false;

	end = p;
	while (*end != '\0' && *end != '/' && *end != '?' && *end != '#')
	{
		unsigned char c = (unsigned char) *end;

		if (c <= 0x20 || c == 0x7f || c == '@' || c == '\\')
			return false;
		end++;
	}

	if (*p == '[')
	{
		const char *close = memchr(p, ']', (size_t) (end - p));

		if (close == NULL)
			return false;
		o->host = p;
		o->host_len = (size_t) (close - p) + 1;
		p = close + 1;
	}
	else
	{
		o->host = p;
		while (p < end && *p != ':')
			p++;
		o->host_len = (size_t) (p - o->host);
	}
	if (o->host_len == 0)
		return false;

	o->port = o->https ? 443 : 80;
	if (p < end)
	{
		long		port = 0;

		if (*p != ':')
			return false;
		p++;
		if (p < end)
		{
			while (p < end)
			{
				if (!is_digit(*p))
					return false;
				port = port * 10 + (*p - '0');
				if (port > 65535)
					return false;
				p++;
			}
			if (port == 0)
				return false;
			o->port = port;
		}
	}
	return true;
}

bool
emh_same_origin(const char *a, const char *b)
{
	UrlOrigin	oa,
				ob;

	if (!parse_origin(a, &oa) || !parse_origin(b, &ob))
		return false;
	if (oa.https != ob.https || oa.port != ob.port || oa.host_len != ob.host_len)
		return false;
	for (size_t i = 0; i < oa.host_len; i++)
		if (ascii_lower(oa.host[i]) != ascii_lower(ob.host[i]))
			return false;
	return true;
}

bool
emh_contains_ci(const char *haystack, size_t len, const char *needle)
{
	size_t		nlen = strlen(needle);

	if (haystack == NULL || nlen == 0 || nlen > len)
		return false;
	for (size_t i = 0; i + nlen <= len; i++)
	{
		size_t		j = 0;

		while (j < nlen && ascii_lower(haystack[i + j]) == ascii_lower(needle[j]))
			j++;
		if (j == nlen)
			return true;
	}
	return false;
}
