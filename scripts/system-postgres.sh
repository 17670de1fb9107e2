#!/usr/bin/env bash
# Provision a throwaway PostgreSQL 15 cluster (Debian 12 / bookworm) with real
# extensions for the test suite: pg_cron (>= 1.6), pgvector, pgcrypto,
# pg_stat_statements, btree_gist; and Debian's pgbouncer (its service disabled).
#
# Usage:
#   scripts/system-postgres.sh install          # install packages / build extensions (idempotent)
#   scripts/system-postgres.sh start DIR PORT   # initdb DIR if empty, start; prints the libpq URL
#   scripts/system-postgres.sh stop DIR         # stop the server in DIR
#
# Only `start` writes to stdout (exactly one line, the URL); everything else
# goes to stderr.  `install` needs root; `start`/`stop` run the server as the
# `postgres` OS user when invoked as root, else as the invoking user.
#
# pgvector and pg_cron are built from Debian trixie *source* packages (a
# deb-src-only entry is added, so no trixie binaries are ever installed):
# bookworm has no pgvector binary and its pg_cron (1.4) lacks `$` (last day of
# month) and `N seconds` schedules.  If the pg-cron source package cannot be
# downloaded (some mirrors do not serve it), the old bookworm
# postgresql-15-cron is installed with a warning.
set -euo pipefail

PG_MAJOR=15
PG_BIN="/usr/lib/postgresql/${PG_MAJOR}/bin"
BUILD_ROOT="${TRIPSAGE_PG_BUILD_DIR:-/var/cache/tripsage-build}"
TRIXIE_SRC_NAME="tripsage-trixie-src"
PG_CRON_MIN="1.6"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
START_TIMEOUT=30

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

log() { printf '[system-postgres] %s\n' "$*" >&2; }
warn() { printf '[system-postgres] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[system-postgres] ERROR: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<EOF
usage: $0 install
       $0 start DIR PORT
       $0 stop DIR
EOF
    exit 2
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# "a >= b" for Debian/upstream version strings.
version_ge() { dpkg --compare-versions "$1" ge "$2"; }

installed_version() { # PKG -> installed version or empty
    local out
    out=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null || true)
    awk '$1 ~ /^.i/ {print $2; exit}' <<<"$out"
}

candidate_version() { # PKG -> apt candidate or empty
    local out
    out=$(apt-cache policy "$1" 2>/dev/null || true)
    awk '/Candidate:/ && $2 != "(none)" {print $2; exit}' <<<"$out"
}

have_binary_version() { # PKG VERSION -> 0 if apt knows that binary version
    local out
    out=$(apt-cache madison "$1" 2>/dev/null || true)
    awk -F'|' -v want="$2" '{gsub(/ /, "", $2)} $2 == want {found=1} END {exit !found}' <<<"$out"
}

_APT_UPDATED=0
apt_update_once() {
    if [ "$_APT_UPDATED" = 0 ]; then
        log "apt-get update"
        apt-get update -qq >&2
        _APT_UPDATED=1
    fi
}

apt_install() {
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >&2
}

# Files the cluster needs; empty output means "not installed".
pg_sharedir() {
    if [ -x "$PG_BIN/pg_config" ]; then
        "$PG_BIN/pg_config" --sharedir
    else
        echo "/usr/share/postgresql/${PG_MAJOR}"
    fi
}
pg_pkglibdir() {
    if [ -x "$PG_BIN/pg_config" ]; then
        "$PG_BIN/pg_config" --pkglibdir
    else
        echo "/usr/lib/postgresql/${PG_MAJOR}/lib"
    fi
}

control_default_version() { # CONTROL_FILE -> default_version
    sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\{0,1\}\([^'[:space:]]*\)'\{0,1\}.*/\1/p" "$1" | sed -n 1p
}

pgvector_ok() {
    [ -f "$(pg_sharedir)/extension/vector.control" ] && [ -f "$(pg_pkglibdir)/vector.so" ]
}

pg_cron_version() {
    local ctl
    ctl="$(pg_sharedir)/extension/pg_cron.control"
    [ -f "$ctl" ] && [ -f "$(pg_pkglibdir)/pg_cron.so" ] || return 0
    control_default_version "$ctl"
}

pg_cron_ok() {
    local v
    v="$(pg_cron_version)"
    [ -n "$v" ] && version_ge "$v" "$PG_CRON_MIN"
}

contrib_ok() {
    local ext
    for ext in pgcrypto pg_stat_statements btree_gist; do
        [ -f "$(pg_sharedir)/extension/${ext}.control" ] || return 1
    done
}

server_ok() { [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; }

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------

# URI of the main Debian archive as this machine's sources spell it.
debian_mirror_uri() {
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # deb822: pick the URIs of the stanza whose Suites include plain "bookworm".
        uri=$(awk '
            BEGIN { RS=""; FS="\n" }
            {
                u=""; s=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { u=$i; sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); u=a[1] }
                    if ($i ~ /^Suites:/) { s=" " $i " " }
                }
                if (u != "" && s ~ /[ \t]bookworm[ \t]/) { print u; exit }
            }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 ~ /[ \t]bookworm[ \t]/ {
                    for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# Adds a deb-src-only trixie entry (returns 0 if the file was created/changed).
ensure_trixie_src() {
    local uri file content
    uri=$(debian_mirror_uri)
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        file="/etc/apt/sources.list.d/${TRIXIE_SRC_NAME}.sources"
        content="# Added by TripSage scripts/system-postgres.sh: SOURCE packages only
# (pgvector, pg_cron are rebuilt against PostgreSQL ${PG_MAJOR}); no binaries from trixie.
Types: deb-src
URIs: ${uri}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    else
        file="/etc/apt/sources.list.d/${TRIXIE_SRC_NAME}.list"
        content="# Added by TripSage scripts/system-postgres.sh: SOURCE packages only.
deb-src ${uri} trixie main"
    fi
    if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
        return 1
    fi
    log "adding deb-src trixie entry ($uri) in $file"
    printf '%s\n' "$content" >"$file"
    return 0
}

# Newest version of a source package apt knows about (any suite).
newest_source_version() { # SRCPKG
    local best="" v
    while read -r v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done < <(apt-cache showsrc "$1" 2>/dev/null | awk '/^Version:/ {print $2}')
    echo "$best"
}

# Source package name for a binary/source name candidate list.
find_source_package() { # NAME...
    local n out pkg
    for n in "$@"; do
        out=$(apt-cache showsrc "$n" 2>/dev/null || true)
        pkg=$(awk '/^Package:/ {print $2; exit}' <<<"$out")
        if [ -n "$pkg" ]; then
            echo "$pkg"
            return 0
        fi
    done
    return 1
}

install_server_packages() {
    local pkgs=() srv_ver dev_ver
    srv_ver=$(installed_version "postgresql-${PG_MAJOR}")
    dev_ver=$(installed_version "postgresql-server-dev-${PG_MAJOR}")

    if [ -z "$srv_ver" ]; then
        # Fresh machine: do not let postgresql-common create (and maybe start) a
        # 15/main cluster on port 5432; we only use initdb/pg_ctl on our own dirs.
        if [ -d /etc/postgresql-common/createcluster.d ] || mkdir -p /etc/postgresql-common/createcluster.d; then
            [ -f /etc/postgresql-common/createcluster.d/tripsage.conf ] ||
                echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/tripsage.conf
        fi
        apt_update_once
        pkgs+=("postgresql-${PG_MAJOR}" "postgresql-contrib" "postgresql-server-dev-${PG_MAJOR}")
    elif [ -z "$dev_ver" ]; then
        # Prefer the dev headers of exactly the installed server version; if the
        # archive no longer has it, upgrade the server to the dev candidate too.
        have_binary_version "postgresql-server-dev-${PG_MAJOR}" "$srv_ver" || apt_update_once
        if have_binary_version "postgresql-server-dev-${PG_MAJOR}" "$srv_ver"; then
            pkgs+=("postgresql-server-dev-${PG_MAJOR}=${srv_ver}")
        else
            warn "postgresql-server-dev-${PG_MAJOR}=${srv_ver} not available; upgrading postgresql-${PG_MAJOR} to the candidate"
            pkgs+=("postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}")
        fi
    elif [ "$dev_ver" != "$srv_ver" ]; then
        warn "postgresql-${PG_MAJOR} ${srv_ver} vs postgresql-server-dev-${PG_MAJOR} ${dev_ver}: patch-level skew (ABI-compatible within ${PG_MAJOR}.x)"
    fi

    command -v make >/dev/null && command -v gcc >/dev/null || pkgs+=(build-essential)
    command -v dpkg-source >/dev/null || pkgs+=(dpkg-dev)
    [ -f /usr/include/postgresql/libpq-fe.h ] || pkgs+=(libpq-dev)

    if [ "${#pkgs[@]}" -gt 0 ]; then
        local p
        for p in "${pkgs[@]}"; do
            [ -n "$(candidate_version "${p%%=*}")" ] || apt_update_once
        done
        apt_install "${pkgs[@]}"
    fi

    server_ok || die "PostgreSQL ${PG_MAJOR} server binaries missing in $PG_BIN"
    [ -x "$PG_BIN/pg_config" ] || die "$PG_BIN/pg_config missing (postgresql-server-dev-${PG_MAJOR})"
    [[ "$("$PG_BIN/pg_config" --version)" == "PostgreSQL ${PG_MAJOR}."* ]] ||
        die "$PG_BIN/pg_config is not PostgreSQL ${PG_MAJOR}: $("$PG_BIN/pg_config" --version)"
    contrib_ok || die "contrib extensions (pgcrypto, pg_stat_statements, btree_gist) missing from $(pg_sharedir)/extension"
}

# Download + unpack + build (not install) a Debian source package against PG15.
# Args: SRCPKG  -> on success prints the build directory on stdout.
fetch_and_unpack_source() {
    local src=$1 ver dir dsc
    ver=$(newest_source_version "$src")
    if [ -z "$ver" ]; then
        warn "apt knows no source version of $src"
        return 1
    fi
    dir="$BUILD_ROOT/$src"
    rm -rf "$dir"
    mkdir -p "$dir"
    # Let apt's sandbox user write the download (avoids the "unsandboxed" warning).
    getent passwd _apt >/dev/null && chown _apt "$dir"
    log "fetching source package $src $ver into $dir"
    (cd "$dir" && apt-get source -qq --download-only "${src}=${ver}" >&2) || return 1
    dsc=$(find "$dir" -maxdepth 1 -name '*.dsc' -print -quit)
    [ -n "$dsc" ] || return 1
    dpkg-source --no-check -x "$dsc" "$dir/src" >&2 || return 1
    echo "$ver" >"$dir/SOURCE_VERSION"
    echo "$dir/src"
}

make_build() { # SRCDIR [make args...]
    local srcdir=$1
    shift
    (cd "$srcdir" && make -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" "$@" >&2)
}

make_install() { # SRCDIR [make args...]
    local srcdir=$1
    shift
    (cd "$srcdir" && make install PG_CONFIG="$PG_BIN/pg_config" "$@" >&2)
}

PG_CRON_FALLBACK_MARK="$BUILD_ROOT/pg_cron-FALLBACK"

install_pg_cron() {
    local csrc srcdir="" how=""
    if csrc=$(find_source_package pg-cron pg_cron "postgresql-${PG_MAJOR}-cron") &&
        srcdir=$(fetch_and_unpack_source "$csrc") && make_build "$srcdir"; then
        how="Debian source package $csrc $(cat "$(dirname "$srcdir")/SOURCE_VERSION")"
    else
        srcdir=""
    fi

    if [ -n "$srcdir" ]; then
        # `make install` would overwrite the files of an apt postgresql-15-cron.
        if [ -n "$(installed_version "postgresql-${PG_MAJOR}-cron")" ]; then
            log "removing apt postgresql-${PG_MAJOR}-cron before installing the source build"
            apt-get remove -y -qq "postgresql-${PG_MAJOR}-cron" >&2
        fi
        make_install "$srcdir" || die "pg_cron make install failed"
        if pg_cron_ok; then
            rm -f "$PG_CRON_FALLBACK_MARK"
            log "pg_cron $(pg_cron_version) installed from $how"
            return 0
        fi
        warn "pg_cron built from $how but its control file says $(pg_cron_version)"
    fi

    warn "could not build pg_cron >= ${PG_CRON_MIN} from source; falling back to apt postgresql-${PG_MAJOR}-cron (older pg_cron: no '\$' last-day or 'N seconds' schedules)"
    if [ -z "$(installed_version "postgresql-${PG_MAJOR}-cron")" ]; then
        [ -n "$(candidate_version "postgresql-${PG_MAJOR}-cron")" ] || apt_update_once
        apt_install "postgresql-${PG_MAJOR}-cron"
    fi
    [ -n "$(pg_cron_version)" ] || die "pg_cron not installed"
    mkdir -p "$BUILD_ROOT"
    pg_cron_version >"$PG_CRON_FALLBACK_MARK"
}

# PgBouncer (Debian's package) for the production-topology tests: the fixtures start their own pgbouncer on a free
# port with a config in a temp dir, so the package's own service is stopped and disabled.
install_pgbouncer() {
    if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
        if [ "$(id -u)" != 0 ]; then
            warn "pgbouncer is not installed and installing it needs root (its tests will be skipped)"
            return 0
        fi
        [ -n "$(candidate_version pgbouncer)" ] || apt_update_once
        apt_install pgbouncer
    fi
    if [ "$(id -u)" = 0 ]; then
        if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
            systemctl disable --now pgbouncer.service >&2 2>/dev/null || true
        else
            service pgbouncer stop >&2 2>/dev/null || true
            command -v update-rc.d >/dev/null && update-rc.d pgbouncer disable >&2 2>/dev/null || true
        fi
    fi
}

cmd_install() {
    install_pgbouncer
    # Fast path: everything already in place.  An earlier fallback to the old
    # apt pg_cron also counts as done (retry: TRIPSAGE_PG_RETRY=1), so test runs
    # don't hit the network every time.
    if server_ok && pgvector_ok && contrib_ok; then
        if pg_cron_ok; then
            log "already installed (pgvector $(control_default_version "$(pg_sharedir)/extension/vector.control"), pg_cron $(pg_cron_version))"
            return 0
        fi
        if [ -f "$PG_CRON_FALLBACK_MARK" ] && [ -n "$(pg_cron_version)" ] &&
            [ -z "${TRIPSAGE_PG_RETRY:-}" ]; then
            warn "already installed, but with the FALLBACK pg_cron $(pg_cron_version) (< ${PG_CRON_MIN}); TRIPSAGE_PG_RETRY=1 $0 install retries the source build"
            return 0
        fi
    fi
    [ "$(id -u)" = 0 ] || die "install must run as root"

    install_server_packages

    if ! pgvector_ok || ! pg_cron_ok; then
        local added=0
        ensure_trixie_src && added=1
        if [ "$added" = 1 ] || [ -z "$(find_source_package pgvector || true)" ] ||
            [ -z "$(find_source_package pg-cron pg_cron || true)" ]; then
            apt_update_once
        fi
    fi

    if ! pgvector_ok; then
        local vsrc vdir
        vsrc=$(find_source_package pgvector) ||
            die "no pgvector source package found (is the trixie deb-src entry reachable?)"
        vdir=$(fetch_and_unpack_source "$vsrc") || die "could not fetch the $vsrc source package"
        # OPTFLAGS="": portable build, as Debian does (no -march=native).
        make_build "$vdir" OPTFLAGS="" || die "pgvector build failed (see output above)"
        make_install "$vdir" OPTFLAGS="" || die "pgvector make install failed"
        pgvector_ok || die "pgvector installed but vector.control/vector.so not found"
        log "pgvector $(control_default_version "$(pg_sharedir)/extension/vector.control") installed from Debian source package $vsrc $(cat "$(dirname "$vdir")/SOURCE_VERSION")"
    fi

    pg_cron_ok || install_pg_cron

    verify_extensions_load
    log "installed: pgvector $(control_default_version "$(pg_sharedir)/extension/vector.control"), pg_cron $(pg_cron_version), server $("$PG_BIN/postgres" --version)"
}

# Start a scratch cluster and CREATE every extension, so a headers/server
# mismatch or a broken build is caught at install time.
verify_extensions_load() {
    local tmp port url
    tmp=$(mktemp -d /tmp/tsg-pgverify.XXXXXX)
    chmod 755 "$tmp"
    port=$((50000 + RANDOM % 10000))
    log "verifying extensions load in a scratch cluster ($tmp, port $port)"
    if ! url=$(cmd_start "$tmp/data" "$port"); then
        rm -rf "$tmp"
        die "scratch cluster failed to start"
    fi
    local rc=0
    run_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp/data" -p "$port" -U postgres -d postgres >&2 <<'SQL' || rc=$?
CREATE EXTENSION vector;
CREATE EXTENSION pg_cron;
CREATE EXTENSION pgcrypto;
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION btree_gist;
SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector AS vector_distance;
SELECT extname, extversion FROM pg_extension ORDER BY 1;
SQL
    if [ "$rc" = 0 ] && pg_cron_ok; then
        run_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp/data" -p "$port" -U postgres -d postgres >&2 <<'SQL' || rc=$?
SELECT cron.unschedule(cron.schedule('tsg-verify-seconds', '30 seconds', 'SELECT 1'));
SELECT cron.unschedule(cron.schedule('tsg-verify-lastday', '0 12 $ * *', 'SELECT 1'));
SQL
    fi
    cmd_stop "$tmp/data" || true
    rm -rf "$tmp"
    [ "$rc" = 0 ] || die "extension verification failed ($url)"
}

# ---------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------

# Run a command as the cluster owner (postgres when we are root).
run_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

abs_dir() { # DIR -> absolute path (need not exist)
    case "$1" in
    /*) realpath -m -- "$1" ;;
    *) realpath -m -- "$PWD/$1" ;;
    esac
}

ensure_dir_for_postgres() { # DIR
    local dir=$1 p
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir"
        # Every parent must be traversable by the postgres user.
        p=$(dirname "$dir")
        while [ "$p" != / ]; do
            if ! runuser -u postgres -- test -x "$p"; then
                warn "making $p traversable (o+x) for the postgres user"
                chmod o+x "$p"
            fi
            p=$(dirname "$p")
        done
    fi
    chmod 700 "$dir"
}

pick_locale() {
    if grep -qiE '^c\.utf-?8$' <<<"$(locale -a 2>/dev/null || true)"; then
        echo C.UTF-8
    else
        echo C
    fi
}

is_running() { # DIR
    run_pg "$PG_BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

running_port() { # DIR -> port from postmaster.pid (line 4)
    sed -n 4p "$1/postmaster.pid" 2>/dev/null || true
}

log_tail() { # DIR
    if [ -f "$1/server.log" ]; then
        echo "---- tail of $1/server.log ----" >&2
        tail -n 40 "$1/server.log" >&2
    fi
}

write_config() { # DIR PORT
    local dir=$1 port=$2 conf="$1/tripsage.conf"
    cat >"$conf" <<EOF
# Written by scripts/system-postgres.sh on every start (throwaway test cluster).
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = '${dir}'
max_connections = 300
shared_preload_libraries = 'pg_cron,pg_stat_statements'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 32
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
EOF
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$conf"
    if ! grep -q "^include_if_exists = 'tripsage.conf'" "$dir/postgresql.conf"; then
        printf "\n# TripSage test settings\ninclude_if_exists = 'tripsage.conf'\n" >>"$dir/postgresql.conf"
    fi
}

cmd_start() {
    [ $# -eq 2 ] || usage
    local dir port
    dir=$(abs_dir "$1")
    port=$2
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "bad port: $port"
    server_ok || die "PostgreSQL ${PG_MAJOR} not installed; run: $0 install"

    if [ -f "$dir/PG_VERSION" ] && is_running "$dir"; then
        local rport
        rport=$(running_port "$dir")
        if [ -n "$rport" ] && [ "$rport" != "$port" ]; then
            warn "server in $dir already running on port $rport (not $port)"
            port=$rport
        else
            log "server in $dir already running"
        fi
        echo "postgresql://postgres@127.0.0.1:${port}/postgres"
        return 0
    fi

    if [ ! -f "$dir/PG_VERSION" ] && [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir is not empty and not a PostgreSQL data directory"
    fi
    ensure_dir_for_postgres "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        local loc
        loc=$(pick_locale)
        log "initdb $dir (locale $loc)"
        run_pg "$PG_BIN/initdb" -D "$dir" --auth=trust -U postgres --encoding=UTF8 --locale="$loc" >&2 ||
            die "initdb failed"
    else
        local dv
        dv=$(cat "$dir/PG_VERSION")
        [ "$dv" = "$PG_MAJOR" ] || die "$dir is a PostgreSQL $dv data directory, not $PG_MAJOR"
    fi

    write_config "$dir" "$port"

    log "starting PostgreSQL ${PG_MAJOR} in $dir on 127.0.0.1:$port"
    if ! run_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t "$START_TIMEOUT" start >&2; then
        log_tail "$dir"
        die "pg_ctl start failed for $dir"
    fi

    local i=0
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        i=$((i + 1))
        if [ "$i" -ge $((START_TIMEOUT * 2)) ]; then
            log_tail "$dir"
            die "server in $dir not ready on 127.0.0.1:$port after ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
    echo "postgresql://postgres@127.0.0.1:${port}/postgres"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir
    dir=$(abs_dir "$1")
    if [ ! -f "$dir/PG_VERSION" ]; then
        log "$dir is not a data directory; nothing to stop"
        return 0
    fi
    if ! is_running "$dir"; then
        log "server in $dir not running"
        return 0
    fi
    log "stopping server in $dir"
    run_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >&2 ||
        run_pg "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >&2
}

main() {
    [ $# -ge 1 ] || usage
    local cmd=$1
    shift
    case "$cmd" in
    install) [ $# -eq 0 ] || usage; cmd_install ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"
