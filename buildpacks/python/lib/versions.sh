# shellcheck shell=bash
# Choosing among the host's runtimes: the same file in every bundled buildpack that reads a
# version (a buildpack is copied alone, so each carries it; a unit test keeps the copies
# equal). A runtime is a line "version<TAB>path<TAB>where found", lists are newest first.

# The home folder of the user running the build (HOME is the app's during a build), read
# without a process: detect runs on every deploy.
host_home() {
  local name x uid gid gecos home shell
  while IFS=: read -r name x uid gid gecos home shell; do
    if [ "$uid" = "$EUID" ]; then
      echo "$home"
      return
    fi
  done </etc/passwd
  getent passwd "$EUID" 2>/dev/null | cut -d: -f6
}

# Sorts runtime lines newest first, one line a version.
vs_sort() {
  sort -t. -k1,1nr -k2,2nr -k3,3nr -s | awk -F'\t' '!seen[$1]++'
}

# The runtime for a request, from the lines on stdin: a full X.Y.Z only itself, a shorter
# X or X.Y the newest of that line. Prints the line, or nothing.
vs_match() {
  awk -F'\t' -v a="$1" '$1 == a || index($1, a ".") == 1 { print; exit }'
}

# The nearest of the lines on stdin to a request: smallest distance in major, then minor,
# then patch; the newer on a tie.
vs_nearest() {
  awk -F'\t' -v a="$1" '
    BEGIN { n = split(a, w, "."); for (i = n + 1; i <= 3; i++) w[i] = 999 }
    { split($1, v, "."); d = (v[1] - w[1]) * 1000000 + (v[2] - w[2]) * 1000 + (v[3] - w[3]); if (d < 0) d = -d + 0.5
      if (best == "" || d < bd) { best = $0; bd = d } }
    END { if (best != "") print best }'
}

# "1.2.3 (where), ..." from the lines on stdin, oldest first; "none" for no line.
vs_list() {
  awk -F'\t' 'NF { l[++n] = $1 " (" $3 ")" } END { if (!n) printf "none"; for (i = n; i >= 1; i--) printf "%s%s", l[i], (i > 1 ? ", " : "") }'
}

# The one rule by which every bundled buildpack that reads a version chooses among the
# host's runtimes (the lines on stdin), and says so; docs/differences.md is what it keeps.
# The version asked if the host has it; else, with SHIPWAY_NEAREST_VERSION=1, the nearest
# found, with a ` !` warning line; else, when the app asks for nothing (the platform's
# default or the last build's stands for it), the nearest found, with a warning line too;
# else nothing: an explicit request is never bent.
#   vs_choose build KEY=VALUE...   bin/compile: sets VS_CHOSEN to the line chosen, or prints
#                                  the failure on stderr and returns 1 (the caller adds its
#                                  own last lines and exits).
#   vs_choose notes KEY=VALUE...   bin/detect: prints the note "used: ...".
# Keys: runtime (its name: Go), asked (as said: go1.22), origin (where it was asked),
# install (the command that installs it); and, when not the default: want (the request
# as matched: 1.22; asked), shown (said before a version: go; nothing), would (what the
# platform would use: go1.22.12; "<runtime> <asked>"), defaulted (`default` or `cached`
# when the app asks for nothing), lacks (the end of the failure: "no such JDK"; "no
# <runtime> <want>"), choose (how to ask, said when defaulted), match and nearest (the
# functions that find a request's line and the nearest one: vs_match, vs_nearest).
vs_choose() {
  local mode=$1 kv found match nearest v path where why hint
  local -A r=([want]= [shown]= [would]= [defaulted]= [lacks]= [choose]= [match]=vs_match [nearest]=vs_nearest)
  shift
  for kv in "$@"; do r[${kv%%=*}]=${kv#*=}; done
  : "${r[want]:=${r[asked]}}" "${r[would]:=${r[runtime]} ${r[asked]}}" "${r[lacks]:=no ${r[runtime]} ${r[want]}}"
  found=$(cat)
  VS_CHOSEN=
  match=$("${r[match]}" "${r[want]}" <<<"$found")
  nearest=
  [ -n "$match" ] || nearest=$("${r[nearest]}" "${r[want]}" <<<"$found")
  if [ -n "$match" ]; then
    VS_CHOSEN=$match
  elif [ -n "$nearest" ] && { [ "${SHIPWAY_NEAREST_VERSION:-}" = 1 ] || [ -n "${r[defaulted]}" ]; }; then
    VS_CHOSEN=$nearest
  fi
  IFS=$'\t' read -r v path where <<<"$VS_CHOSEN"
  if [ "$mode" = notes ]; then
    if [ -n "$match" ]; then
      echo "used: ${r[shown]}$v ($where: $path)"
    elif [ -n "$VS_CHOSEN" ]; then
      why="since SHIPWAY_NEAREST_VERSION=1"
      [ -n "${r[defaulted]}" ] && why="since the app asks for no version"
      echo "used: ${r[shown]}$v, the nearest ($where: $path), $why"
    else
      echo "used: none matches ${r[asked]}: the build fails (install it: ${r[install]})"
    fi
    return 0
  fi
  [ -n "$match" ] && return 0
  if [ "${SHIPWAY_NEAREST_VERSION:-}" = 1 ] && [ -n "$nearest" ]; then
    echo " !     ${r[runtime]} ${r[asked]} (${r[origin]}) is not on this host: using the nearest, ${r[shown]}$v, since SHIPWAY_NEAREST_VERSION=1. The platform would use ${r[would]}."
  elif [ -n "$VS_CHOSEN" ]; then
    why="its default"
    [ "${r[defaulted]}" = cached ] && why="the last build's"
    echo " !     No ${r[runtime]} version is asked: the platform would use ${r[would]} ($why), which this host lacks; using the nearest found, ${r[shown]}$v.${r[choose]:+ ${r[choose]}}"
  else
    hint=
    [ -n "$nearest" ] && hint=", or set SHIPWAY_NEAREST_VERSION=1 to use the nearest, ${r[shown]}$(cut -f1 <<<"$nearest"), with a warning"
    printf ' !     %s\n' "${r[runtime]} ${r[asked]} is asked (${r[origin]}), and this host has ${r[lacks]}." \
      "Found: $(vs_list <<<"$found")." \
      "Install it:  ${r[install]}" \
      "then build again$hint." >&2
    return 1
  fi
}
