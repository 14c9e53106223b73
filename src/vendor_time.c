/*-------------------------------------------------------------------------
 *
 * vendor_time.c
 *		The strict vendor timestamp grammar (see vendor_time.h).
 *
 * Written to be fuzzed like http_headers.c: no postgres.h, no allocation,
 * no locale, no read past len, and a definite answer for every input.
 * engineering._ts() (vendor_text_sql.c) turns the fields into a
 * timestamptz.
 *
 * Copyright (c) 2026, The engineering_metrics Developers
 *
 *-------------------------------------------------------------------------
 */
#include "vendor_time.h"

/* exactly n digits at s[*i] */
static bool
digits(const char *s, size_t len, size_t *i, int n, int *out)
{
	int			v = 0;

	if (*i + (size_t) n > len)
		return false;
	for (int k = 0; k < n; k++)
	{
		char		c = s[*i + k];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*i += (size_t) n;
	*out = v;
	return true;
}

static int
days_in_month(int year, int month)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool		leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : mdays[month - 1];
}

/* the fraction after the seconds: six digits kept, the seventh rounds */
static bool
fraction(const char *s, size_t len, size_t *i, int *usec)
{
	int			scale = 100000;
	int			ndig = 0;
	bool		round_up = false;

	*usec = 0;
	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
	{
		if (ndig < 6)
		{
			*usec += (s[*i] - '0') * scale;
			scale /= 10;
		}
		else if (ndig == 6)
			round_up = s[*i] >= '5';
		ndig++;
		(*i)++;
	}
	if (round_up)
		(*usec)++;
	return ndig > 0;
}

/* 'Z', or ±HH, ±HHMM, ±HH:MM; sets the offset east of Greenwich */
static bool
zone(const char *s, size_t len, size_t *i, int *offset)
{
	int			sign;
	int			oh,
				om = 0;

	if (*i < len && (s[*i] == 'Z' || s[*i] == 'z'))
	{
		(*i)++;
		*offset = 0;
		return true;
	}
	if (*i >= len || (s[*i] != '+' && s[*i] != '-'))
		return false;
	sign = s[*i] == '-' ? -1 : 1;
	(*i)++;
	if (!digits(s, len, i, 2, &oh))
		return false;
	if (*i < len && s[*i] == ':')
	{
		(*i)++;
		if (!digits(s, len, i, 2, &om))
			return false;
	}
	else if (*i < len && !digits(s, len, i, 2, &om))
		return false;
	if (oh > 15 || om > 59)
		return false;
	*offset = sign * (oh * 3600 + om * 60);
	return true;
}

bool
emv_parse_timestamp(const char *s, size_t len, EmvTimestamp *out)
{
	EmvTimestamp t = {0};
	size_t		i = 0;

	if (s == 0 || out == 0)
		return false;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (!digits(s, len, &i, 4, &t.year) || i >= len || s[i++] != '-' ||
		!digits(s, len, &i, 2, &t.month) || i >= len || s[i++] != '-' ||
		!digits(s, len, &i, 2, &t.day) || i >= len ||
		(s[i] != 'T' && s[i] != 't' && s[i] != ' '))
		return false;
	i++;
	if (!digits(s, len, &i, 2, &t.hour) || i >= len || s[i++] != ':' ||
		!digits(s, len, &i, 2, &t.minute))
		return false;
	if (i < len && s[i] == ':')
	{
		i++;
		if (!digits(s, len, &i, 2, &t.second))
			return false;
		if (i < len && (s[i] == '.' || s[i] == ','))
		{
			i++;
			if (!fraction(s, len, &i, &t.microsecond))
				return false;
		}
	}
	while (i < len && s[i] == ' ')
		i++;
	if (!zone(s, len, &i, &t.offset_seconds) || i != len)
		return false;
	if (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1 ||
		t.day > days_in_month(t.year, t.month) ||
		t.hour > 23 || t.minute > 59 || t.second > 60)
		return false;
	*out = t;
	return true;
}
