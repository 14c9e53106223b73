# Shared set-up for the README's two commands (test/run-tests, test/demo/run).
# Sourced, not executed.  Everything here is idempotent: a second run finds
# the packages and the build in place and moves on.

EM_PACKAGES="postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev \
libipc-run-perl python3 make gcc libc6-dev"

em_log() {
    printf '\033[1m==> %s\033[0m\n' "$*" >&2
}

em_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Install the Debian packages that are missing (only as root; otherwise
# say what is missing and stop).
em_require_packages() {
    local missing="" pkg
    for pkg in $EM_PACKAGES "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing="$missing $pkg"
        fi
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        em_die "missing packages:$missing (run as root, or: sudo apt-get install$missing)"
    fi
    em_log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's postgresql-common creates a "main" cluster on install; we
    # never use it, and creating it would start a server on port 5432.
    if [ ! -e /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf 2>/dev/null; then
        mkdir -p /etc/postgresql-common
        echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
    fi
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        $missing >/dev/null
}

# PostgreSQL 15 unless the caller points PG_CONFIG elsewhere (16, 17, or a
# private copy of an installation).
em_pg_config() {
    if [ -z "${PG_CONFIG:-}" ]; then
        if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
            PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
        else
            PG_CONFIG=pg_config
        fi
    fi
    export PG_CONFIG
    PG_BINDIR=$("$PG_CONFIG" --bindir)
    export PG_BINDIR
}

# Build and install the extension into the installation PG_CONFIG names.
em_build_and_install() {
    local root=$1
    em_pg_config
    em_log "building and installing engineering_metrics (PG_CONFIG=$PG_CONFIG)"
    make -s -C "$root" PG_CONFIG="$PG_CONFIG" -j"$(nproc)" all >/dev/null
    make -s -C "$root" PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# The unprivileged account that runs servers when we are root: initdb and
# pg_regress refuse to run as root.
EM_RUN_AS=${EM_RUN_AS:-postgres}

# Run a command as the unprivileged user when we are root, else as ourselves.
# From /, since root's working directory may be closed to that user; callers
# pass absolute paths.
em_as_user() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u "$EM_RUN_AS" -- env PATH="$PATH" "$@")
    else
        "$@"
    fi
}

# Copy the source tree (without build or test leftovers) to a fresh folder
# the unprivileged user owns, and print the folder.  Root's checkout may sit
# somewhere that user cannot read or write (/root, a CI workspace).
em_copy_tree_for_user() {
    local root=$1 dest
    dest=$(mktemp -d "${TMPDIR:-/tmp}/engineering_metrics.XXXXXX")
    tar -C "$root" --exclude=./.git --exclude=./tmp_check --exclude=./results \
        --exclude=./.demo --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
        -cf - . | tar -C "$dest" -xf -
    if [ "$(id -u)" = 0 ]; then
        chown -R "$EM_RUN_AS": "$dest"
    fi
    echo "$dest"
}

# Make a folder the unprivileged user can write, even when root's checkout
# is not reachable by that user (e.g. under /root): then the folder lives in
# /var/tmp and a symlink at the wanted place points to it.  Callers hand the
# server `readlink -f` of the folder, never a path through the symlink.
em_user_dir() {
    local want=$1 alt
    mkdir -p "$want" 2>/dev/null || true
    if [ "$(id -u)" = 0 ]; then
        chown "$EM_RUN_AS": "$want" 2>/dev/null || true
        if ! runuser -u "$EM_RUN_AS" -- test -w "$want" 2>/dev/null; then
            alt=/var/tmp/engineering_metrics-$(echo "$want" | md5sum | cut -c1-12)
            mkdir -p "$alt" && chown "$EM_RUN_AS": "$alt"
            rmdir "$want" 2>/dev/null || true
            [ -L "$want" ] || ln -s "$alt" "$want"
        fi
    fi
}

# em_cluster_start DATADIR PORT [extra postgresql.conf lines...]
# Start (initialising if needed) a throwaway cluster that preloads the
# extension and listens on localhost:PORT with trust authentication.
em_cluster_start() {
    local data=$1 port=$2 line
    shift 2
    em_pg_config
    if [ ! -f "$data/PG_VERSION" ]; then
        em_log "initialising a cluster in $data"
        em_as_user "$PG_BINDIR/initdb" -D "$data" -U postgres -A trust -E UTF8 \
            --locale=C >/dev/null
        {
            echo "# written by engineering_metrics' scripts"
            echo "port = $port"
            echo "listen_addresses = 'localhost'"
            echo "unix_socket_directories = ''"
            echo "shared_preload_libraries = 'engineering_metrics'"
            echo "max_worker_processes = 16"
            echo "timezone = 'UTC'"
            for line in "$@"; do echo "$line"; done
        } | em_as_user tee -a "$data/postgresql.conf" >/dev/null
    fi
    if em_as_user "$PG_BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        em_log "cluster in $data is already running"
    else
        em_log "starting the cluster on localhost:$port"
        em_as_user "$PG_BINDIR/pg_ctl" -D "$data" -l "$data/server.log" -w start >/dev/null
    fi
}

em_cluster_stop() {
    local data=$1
    em_pg_config
    if [ -f "$data/PG_VERSION" ] && em_as_user "$PG_BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        em_as_user "$PG_BINDIR/pg_ctl" -D "$data" -m fast -w stop >/dev/null
        em_log "stopped the cluster in $data"
    else
        em_log "no cluster running in $data"
    fi
}
