# shellcheck shell=bash
# The JDK an app asks for, as Scalingo's JVM buildpacks read it (buildpack-jvm-common's
# bin/java), and the host's JDKs: sourced by the java and jvm-common buildpacks' scripts
# (the same file in both; a unit test keeps them equal). Upstream: java.runtime.version in
# system.properties, a major ("21", "1.8") meaning its newest release and anything longer
# an exact version, an optional distribution prefix ("zulu-21"); else 25, the newest LTS
# (1.8 on scalingo-22).

# Sets JDK_ASKED (a major, or a full version) and JDK_ORIGIN.
jdk_requested() {
  local file=$1/system.properties v
  JDK_ASKED= JDK_ORIGIN=
  v=$({ grep -E '^java\.runtime\.version[[:space:]=]+' "$file" 2>/dev/null || true; } |
    sed -E 's/java\.runtime\.version([ \t]*=[ \t]*|[ \t]+)([_A-Za-z0-9.-]*).*/\2/' | head -n 1)
  if [ -n "$v" ]; then
    JDK_ORIGIN="system.properties java.runtime.version=$v"
  else
    v=25
    [ "${STACK:-}" = scalingo-22 ] && v=1.8
    JDK_ORIGIN="nothing asked: the platform's default for ${STACK:-its stack}"
  fi
  v=${v#*-}          # the distribution (zulu-, heroku-) does not change the version
  v=${v/#1./}        # 1.8 is Java 8
  JDK_ASKED=${v%%_*} # 1.8.0_392: 8.0
}

# A JDK's version from its release file ("17.0.15", "1.8.0_392" read as 8.0.392).
jdk_release_version() {
  local v
  v=$(sed -nE 's/^JAVA_VERSION="([^"]*)".*/\1/p' "$1/release" 2>/dev/null)
  [ -n "$v" ] || return 1
  v=${v/#1./}
  echo "${v/_/.}"
}

# Every JDK of this host, "version<TAB>home<TAB>where"; a JRE counts for running only.
jdk_host_jdks() {
  local home p v where lines=() seen=" " real dir
  home=$(host_home)
  for dir in ${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/* "$home"/.sdkman/candidates/java/* \
    "${ASDF_DATA_DIR:-$home/.asdf}"/installs/java/* "${MISE_DATA_DIR:-$home/.local/share/mise}"/installs/java/*; do
    [ -x "$dir/bin/java" ] || continue
    real=$(readlink -f "$dir") && [[ $seen != *" $real "* ]] || continue
    seen+="$real "
    v=$(jdk_release_version "$dir") || continue
    case $dir in "${JAVA_HOME:-/nonexistent}") where=JAVA_HOME ;; */.sdkman/*) where=sdkman ;; */mise/*) where=mise ;; */asdf/* | */.asdf/*) where=asdf ;; *) where=system ;; esac
    lines+=("$v	$dir	$where")
  done
  p=$(command -v java || true)
  if [ -n "$p" ]; then
    dir=$(dirname "$(dirname "$(readlink -f "$p")")")
    if [[ $seen != *" $(readlink -f "$dir") "* ]] && v=$(jdk_release_version "$dir"); then
      lines+=("$v	$dir	PATH")
    fi
  fi
  if [ ${#lines[@]} -gt 0 ]; then printf '%s\n' "${lines[@]}" | vs_sort; fi
}

jdk_install_hint() {
  echo "sudo apt-get install openjdk-$1-jdk-headless (where Debian has it), or sdk install java $1-zulu, or mise install java@zulu-$1"
}
