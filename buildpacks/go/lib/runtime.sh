# shellcheck shell=bash
# The Go an app asks for, as Scalingo's go-buildpack reads it (lib/common.sh there), and
# the host's Go toolchains: sourced by bin/detect and bin/compile. Upstream: the GOVERSION
# config var, else go.mod's `// +scalingo goVersion` comment, else its `go` line, else its
# default; a `goX.Y` is expanded to its newest patch (data.json). `toolchain` is not read.

GO_DEFAULT=go1.24
declare -A GO_LATEST=([go1.25]=go1.25.5 [go1.24]=go1.24.11 [go1.23]=go1.23.12 [go1.22]=go1.22.12 [go1.21]=go1.21.13 [go1.20]=go1.20.14 [go1.19]=go1.19.13)

# Sets GO_ASKED (goX.Y or goX.Y.Z) and GO_ORIGIN. $2: GOVERSION, when set.
go_requested() {
  local mod=$1/go.mod configured=${2:-} v
  GO_ASKED= GO_ORIGIN=
  if [ -n "$configured" ]; then
    GO_ASKED=$configured GO_ORIGIN="GOVERSION config var"
  elif v=$(awk '$1 == "//" && $2 == "+scalingo" && $3 == "goVersion" { print $4; exit }' "$mod" 2>/dev/null) && [ -n "$v" ]; then
    GO_ASKED=$v GO_ORIGIN="the +scalingo goVersion comment of go.mod"
  elif v=$(awk '$1 == "go" { print "go" $2; exit }' "$mod" 2>/dev/null) && [ -n "$v" ]; then
    GO_ASKED=$v GO_ORIGIN="the go line of go.mod"
  else
    GO_ASKED=$GO_DEFAULT GO_ORIGIN=default
  fi
}

# go.mod's toolchain line, which the platform's buildpack does not read.
go_toolchain() {
  awk '$1 == "toolchain" { print $2; exit }' "$1/go.mod" 2>/dev/null || true
}

# What the platform installs for a request: goX.Y means its newest goX.Y.Z.
go_expanded() {
  echo "${GO_LATEST[$1]:-$1}"
}

# Every Go of this host, "version<TAB>bin folder<TAB>where", version without "go".
go_host_toolchains() {
  local home p v where lines=() seen=" " real
  home=$(host_home)
  for p in /usr/lib/go-1.*/bin/go /usr/local/go/bin/go "$home"/sdk/go1.*/bin/go "$home"/go/pkg/mod/golang.org/toolchain@*/bin/go \
    "${ASDF_DATA_DIR:-$home/.asdf}"/installs/golang/*/go/bin/go "${MISE_DATA_DIR:-$home/.local/share/mise}"/installs/go/*/bin/go; do
    [ -x "$p" ] || continue
    case $p in */asdf/* | */.asdf/*) where=asdf ;; */mise/*) where=mise ;; */sdk/*) where="golang.org/dl" ;; */toolchain@*) where="go toolchain cache" ;; *) where=system ;; esac
    real=$(readlink -f "$p") && [[ $seen != *" $real "* ]] || continue
    seen+="$real "
    v=$(cat "$(dirname "$(dirname "$real")")/VERSION" 2>/dev/null | head -n 1) || true
    v=${v#go}
    [[ $v =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] && lines+=("$v	${p%/go}	$where")
  done
  local IFS=: dir
  for dir in $PATH; do
    [[ $dir == */shims ]] && continue
    p=$dir/go
    [ -x "$p" ] || continue
    real=$(readlink -f "$p") && [[ $seen != *" $real "* ]] || continue
    seen+="$real "
    v=$(GOTOOLCHAIN=local "$p" env GOVERSION 2>/dev/null) || continue
    v=${v#go}
    lines+=("$v	$dir	PATH")
  done
  unset IFS
  if [ ${#lines[@]} -gt 0 ]; then printf '%s\n' "${lines[@]}" | vs_sort; fi
}

go_install_hint() {
  echo "go install golang.org/dl/$1@latest && $1 download (or your version manager: mise install go@${1#go})"
}
