#!/usr/bin/env bash
# The local Kubernetes control plane for the cluster e2e tests (test infrastructure).
#
#   control-plane.sh deps    install the Debian packages the cluster tests need (as root)
#   control-plane.sh build   build kube-apiserver and kube-controller-manager v1.20.2 from Debian's
#                            `kubernetes` source package, once, into the cache
#   control-plane.sh path    print the directory holding the binaries (empty if not built)
#
# The deb-src entries are derived at run time from this machine's own apt sources (same URIs,
# suites and components, Types: deb-src) into a private sources dir: the system's apt
# configuration is left as it is, and no host name is written into the project.
# Cache: $HOUSEPARTY_K8S_CACHE, default ~/.cache/houseparty/k8s-1.20.2 (a cold build takes ~11 min).
set -euo pipefail

VERSION=1.20.2
# Bumped when the build changes, so a cache made by an older build is built again.
BUILD_REV=2
CACHE="${HOUSEPARTY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/houseparty/k8s-$VERSION}"
BIN="$CACHE/bin"
# The last two: newer copies of two Go modules the build vendors in (see build()).
PACKAGES=(golang-go rsync jq dpkg-dev etcd-server dnsmasq-base iproute2 iptables util-linux openssl golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y --no-install-recommends "${missing[@]}" || { as_root apt-get update -q && as_root apt-get install -y --no-install-recommends "${missing[@]}"; }
}

# deb822 and one-line apt sources → the same entries as deb-src, in our own sources dir.
derive_sources() {
  local out="$1/sources.list.d"
  mkdir -p "$out"
  python3 - "$out/houseparty-src.sources" <<'PY'
import glob, sys
entries = []
for path in sorted(glob.glob('/etc/apt/sources.list.d/*.sources')):
    for block in open(path).read().split('\n\n'):
        fields = {}
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith('#') or ':' not in line:
                continue
            key, _, value = line.partition(':')
            fields[key.strip()] = value.strip()
        if 'deb' in fields.get('Types', '').split() and fields.get('Enabled', 'yes') != 'no':
            fields['Types'] = 'deb-src'
            entries.append(fields)
for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = line.split('#', 1)[0].split()
        if len(parts) >= 3 and parts[0] == 'deb':
            options = {}
            if parts[1].startswith('['):
                while not parts[1].endswith(']'):
                    parts[1:3] = [parts[1] + ' ' + parts[2]]
                for opt in parts[1].strip('[]').split():
                    k, _, v = opt.partition('=')
                    options[k] = v
                parts = [parts[0]] + parts[2:]
            fields = {'Types': 'deb-src', 'URIs': parts[1], 'Suites': parts[2], 'Components': ' '.join(parts[3:])}
            if 'signed-by' in options:
                fields['Signed-By'] = options['signed-by']
            entries.append(fields)
if not entries:
    sys.exit('no deb entries in this machine\'s apt sources to derive deb-src from')
with open(sys.argv[1], 'w') as f:
    f.write('\n\n'.join('\n'.join(f'{k}: {v}' for k, v in e.items()) for e in entries) + '\n')
PY
}

build() {
  if [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kube-controller-manager" ] && [ "$(cat "$BIN/.build-rev" 2>/dev/null)" = "$BUILD_REV" ]; then
    echo "control plane v$VERSION already built in $BIN"
    return 0
  fi
  deps
  local work="$CACHE/work"
  mkdir -p "$work/apt/lists/partial" "$work/src"
  derive_sources "$work/apt"
  local apt=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$work/apt/sources.list.d" -o "Dir::State::Lists=$work/apt/lists")
  apt-get "${apt[@]}" update -q
  (cd "$work/src" && apt-get "${apt[@]}" source kubernetes)
  local tree
  tree=$(find "$work/src" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -n 1)
  [ -n "$tree" ] || { echo "apt-get source kubernetes gave no source tree" >&2; exit 1; }
  # v1.20 vendors reflect2 1.0.1, whose map iteration crashes under Go >= 1.18 (the API server segfaults
  # decoding custom resources); Debian's reflect2 1.0.2 and json-iterator 1.1.12 fix it. Sources only: no go.mod, no tests.
  for m in modern-go/reflect2 json-iterator/go; do
    rsync -a --delete --exclude go.mod --exclude go.sum --exclude '*_test.go' --exclude 'skip_tests' "/usr/share/gocode/src/github.com/$m/" "$tree/vendor/github.com/$m/"
  done
  echo "building kube-apiserver and kube-controller-manager in $tree (about 11 minutes cold)"
  # The Makefile generates code before compiling: a plain `go build` fails.
  (cd "$tree" && GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS=-mod=vendor make WHAT=cmd/kube-apiserver && GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS=-mod=vendor make WHAT=cmd/kube-controller-manager)
  mkdir -p "$BIN"
  for b in kube-apiserver kube-controller-manager; do
    install -m 0755 "$(find "$tree/_output" -type f -name "$b" -perm -u+x | head -n 1)" "$BIN/$b"
  done
  echo "$BUILD_REV" > "$BIN/.build-rev"
  rm -rf "$work"
  echo "control plane v$VERSION built into $BIN"
}

case "${1:-}" in
  deps) deps ;;
  build) build ;;
  path) if [ -x "$BIN/kube-apiserver" ] && [ "$(cat "$BIN/.build-rev" 2>/dev/null)" = "$BUILD_REV" ]; then echo "$BIN"; fi ;;
  *) echo "usage: $0 deps|build|path" >&2; exit 2 ;;
esac
