#!/usr/bin/env bash
# Which package manager the app uses, at which version, and the build steps around it, as
# Scalingo's nodejs-buildpack runs them.

# Official buildpack: failures caught before anything is installed.
fail_conflicts() {
  local lockfiles=() managers=()
  [ -f "$BUILD_DIR/package-lock.json" ] && lockfiles+=(package-lock.json)
  [ -f "$BUILD_DIR/pnpm-lock.yaml" ] && lockfiles+=(pnpm-lock.yaml)
  [ -f "$BUILD_DIR/yarn.lock" ] && lockfiles+=(yarn.lock)
  if [ ${#lockfiles[@]} -gt 1 ]; then
    error "Multiple lockfiles found: ${lockfiles[*]}." \
      "Only one package manager can install the dependencies: keep the lockfile of the one you use, delete the others, commit and deploy again."
    exit 1
  fi
  if [ ${#lockfiles[@]} = 1 ] && [ -f "$BUILD_DIR/npm-shrinkwrap.json" ]; then
    error "Multiple lockfiles conflicting with npm-shrinkwrap.json: ${lockfiles[*]} and npm-shrinkwrap.json." \
      "Keep only one of yarn.lock, pnpm-lock.yaml, package-lock.json and npm-shrinkwrap.json."
    exit 1
  fi
  [ -n "$pkg_engines_npm" ] && managers+=("engines.npm ($pkg_engines_npm)")
  [ -n "$pkg_engines_yarn" ] && managers+=("engines.yarn ($pkg_engines_yarn)")
  [ -n "$pkg_engines_pnpm" ] && managers+=("engines.pnpm ($pkg_engines_pnpm)")
  local declared=""
  [ -n "$pkg_engines_npm" ] && declared+=" npm"
  { [ -n "$pkg_engines_yarn" ] || [[ $pkg_package_manager == yarn* ]]; } && declared+=" yarn"
  { [ -n "$pkg_engines_pnpm" ] || [[ $pkg_package_manager == pnpm* ]]; } && declared+=" pnpm"
  [[ $pkg_package_manager == yarn* || $pkg_package_manager == pnpm* ]] && managers+=("packageManager ($pkg_package_manager)")
  if [ "$(wc -w <<<"$declared")" -gt 1 ]; then
    error "Multiple package managers declared in package.json: ${managers[*]}." \
      "Only one of these fields should be used; remove the others."
    exit 1
  fi
  if [ -n "$pkg_engines_iojs" ]; then
    error "io.js is no longer supported (engines.iojs is \"$pkg_engines_iojs\" in package.json)." \
      "Remove engines.iojs and ask for a Node.js version in engines.node."
    exit 1
  fi
}

# Which package manager installs the dependencies: the lockfile decides, as upstream.
choose_package_manager() {
  YARN=false YARN_2=false PNPM=false
  [ -f "$BUILD_DIR/yarn.lock" ] && YARN=true
  [ -f "$BUILD_DIR/pnpm-lock.yaml" ] && PNPM=true
  # A Yarn 2+ lockfile is YAML with a __metadata block; Yarn 1's is not.
  $YARN && grep -q '^__metadata:' "$BUILD_DIR/yarn.lock" && YARN_2=true
  if $YARN_2; then
    PACKAGE_MANAGER=yarn2
  elif $YARN; then
    PACKAGE_MANAGER=yarn
  elif $PNPM; then
    PACKAGE_MANAGER=pnpm
  else
    PACKAGE_MANAGER=npm
  fi
}

# The yarnPath of .yarnrc.yml, when it names a file of the app (a vendored Yarn release).
yarn_release_path() {
  local path
  [ -f "$BUILD_DIR/.yarnrc.yml" ] || return 0
  path=$(sed -n -E 's/^yarnPath: *["'"'"']?([^"'"'"']*)["'"'"']? *$/\1/p' "$BUILD_DIR/.yarnrc.yml" | head -1)
  [ -n "$path" ] && [ -f "$BUILD_DIR/$path" ] && echo "$path"
}

# Node.js, npm and the app's package manager into .scalingo/node; what was chosen is
# written to $REGISTRY_TMP/chosen (this runs in a pipe's subshell).
install_binaries() {
  local range where bundled npm_range yarn_range pnpm_range package release major
  choose_package_manager
  echo "engines.node (package.json):   ${pkg_engines_node:-unspecified}"
  echo "engines.npm (package.json):    ${pkg_engines_npm:-unspecified (use default)}"
  if $YARN || [ -n "$pkg_engines_yarn" ]; then
    echo "engines.yarn (package.json):   ${pkg_engines_yarn:-unspecified (use default)}"
  fi
  if $PNPM || [ -n "$pkg_engines_pnpm" ]; then
    echo "engines.pnpm (package.json):   ${pkg_engines_pnpm:-unspecified (use default)}"
  fi
  [ -n "$pkg_package_manager" ] && echo "packageManager (package.json): ${pkg_package_manager%%+*}"
  echo
  if [ -z "$pkg_engines_node" ]; then
    warning "Node version not specified in package.json: the platform's default, $NODE_DEFAULT_RANGE, is used."
    range=$NODE_DEFAULT_RANGE
    where="the platform's default (package.json has no engines.node)"
  else
    [ "$pkg_engines_node" = "*" ] && warning "Dangerous semver range (*) in engines.node"
    [ "${pkg_engines_node:0:1}" = ">" ] && warning "Dangerous semver range (>) in engines.node"
    range=$pkg_engines_node
    where="package.json engines.node"
  fi
  install_nodejs "$range" "$where"

  # npm: the one that Node.js release ships with, unless engines.npm asks for another.
  local host_npm_version=""
  bundled=$(cat "$RUNTIMES/$NODE_VERSION.npm" 2>/dev/null || true)
  # Asked only when needed: an npm start costs a few hundred milliseconds.
  if [ -n "$HOST_NPM" ] && { [ "$NODE_SOURCE" = host ] || [ -z "$bundled" ]; }; then
    host_npm_version=$(env "PATH=$HOST_PATH" "$HOST_NPM" --version 2>/dev/null || true)
  fi
  if [ "$NODE_SOURCE" = host ] && [ -z "$pkg_engines_npm" ] && [ -n "$host_npm_version" ]; then
    # The host's node comes with the host's npm.
    local prefix="$BUILD_DIR/.scalingo/node"
    mkdir -p "$prefix/lib/node_modules" "$prefix/bin"
    ln -sfn "$(dirname "$(dirname "$(readlink -f "$HOST_NPM")")")" "$prefix/lib/node_modules/npm"
    ln -sfn ../lib/node_modules/npm/bin/npm-cli.js "$prefix/bin/npm"
    ln -sfn ../lib/node_modules/npm/bin/npx-cli.js "$prefix/bin/npx"
    NPM_VERSION=$host_npm_version
    echo "Using the host's npm $NPM_VERSION, with the host's node"
  else
    [ "$NODE_SOURCE" = host ] && bundled=$host_npm_version
    if [ -z "$bundled" ]; then
      bundled=$host_npm_version
      warning "The npm version that node $NODE_VERSION ships with is not known: using npm $bundled, the host's."
    fi
    npm_range=${pkg_engines_npm:-$bundled}
    if ! ensure_tool npm "$npm_range"; then
      error "npm $npm_range cannot be had: $TOOL_ERROR." \
        "Connect to the npm registry and build again, or ask for a version in engines.npm that has been used here before."
      exit 1
    fi
    link_tool npm "$TOOL_VERSION" npm=bin/npm-cli.js npx=bin/npx-cli.js
    NPM_VERSION=$TOOL_VERSION
    if [ -z "$pkg_engines_npm" ]; then
      echo "Using default npm version: $NPM_VERSION (the one node $NODE_VERSION ships with)"
    elif [ "$NPM_VERSION" = "$bundled" ]; then
      echo "npm $NPM_VERSION already installed with node"
    else
      echo "Bootstrapping npm $pkg_engines_npm (replacing $bundled): npm $NPM_VERSION installed"
    fi
  fi

  TOOL_VERSION=$NPM_VERSION
  release=$(yarn_release_path || true)
  if [[ $pkg_package_manager == yarn* ]] && [ -z "$release" ]; then
    yarn_range=${pkg_package_manager#*@}
    yarn_range=${yarn_range%%+*}
    yarn_range=${yarn_range%%#*}
    install_yarn "$yarn_range" "packageManager in package.json"
  elif $YARN || [ -n "$pkg_engines_yarn" ]; then
    install_yarn "${pkg_engines_yarn:-$YARN_DEFAULT_RANGE}" "$([ -n "$pkg_engines_yarn" ] && echo "engines.yarn in package.json" || echo "the default")"
  fi
  if $YARN_2 && [ -n "$release" ]; then
    echo "Using the Yarn release the app ships: $release (yarnPath in .yarnrc.yml)"
  fi

  if $PNPM; then
    if [[ $pkg_package_manager == pnpm* ]]; then
      pnpm_range=${pkg_package_manager#*@}
      pnpm_range=${pnpm_range%%+*}
    elif [ -n "$pkg_engines_pnpm" ]; then
      pnpm_range=$pkg_engines_pnpm
    else
      pnpm_range=latest
      warning "Default pnpm version used: pnpm-lock.yaml is there but package.json gives no version (packageManager or engines.pnpm), so pnpm@latest is installed."
    fi
    if ! ensure_tool pnpm "$([ "$pnpm_range" = latest ] && echo "*" || echo "$pnpm_range")"; then
      error "pnpm $pnpm_range cannot be had: $TOOL_ERROR."
      exit 1
    fi
    link_tool pnpm "$TOOL_VERSION" pnpm=bin/pnpm.cjs pnpx=bin/pnpx.cjs
    echo "Using pnpm $TOOL_VERSION"
  fi
  major=${TOOL_VERSION%%.*}
  # One line for what the build runs with, beside what was asked and where.
  local from
  case $NODE_SOURCE in
    registry) from="from the npm registry, kept in the cache" ;;
    cache) from="from the cache" ;;
    *) from="the host's" ;;
  esac
  echo "Using node $NODE_VERSION ($from; asked: $range, by $where), npm $NPM_VERSION$(
    case $PACKAGE_MANAGER in
      yarn | yarn2) echo ", yarn $TOOL_VERSION" ;;
      pnpm) echo ", pnpm $TOOL_VERSION" ;;
    esac
  )"
  cat >"$REGISTRY_TMP/chosen" <<CHOSEN
CHOSEN_OK=true
NODE_VERSION=$NODE_VERSION
NODE_SOURCE=$NODE_SOURCE
NPM_VERSION=$NPM_VERSION
PACKAGE_MANAGER=$PACKAGE_MANAGER
TOOL_VERSION=$TOOL_VERSION
TOOL_MAJOR=$major
YARN=$YARN
YARN_2=$YARN_2
PNPM=$PNPM
USED_ENTRIES=(${USED_ENTRIES[*]@Q})
CHOSEN
}

# Yarn at RANGE (asked by WHERE): the `yarn` package holds 1.x (and a few 2.x), later
# releases are `@yarnpkg/cli-dist`, as the official buildpack tells them apart.
install_yarn() {
  local range=$1 where=$2 package=yarn
  echo "Downloading and installing yarn ($range, from $where)"
  if ! ensure_tool yarn "$range"; then
    package=@yarnpkg/cli-dist
    if ! ensure_tool "$package" "$range"; then
      error "Yarn $range cannot be had: $TOOL_ERROR."
      exit 1
    fi
  fi
  link_tool "$package" "$TOOL_VERSION" yarn=bin/yarn.js yarnpkg=bin/yarn.js
  if $YARN_2; then
    echo "Using yarn $TOOL_VERSION"
  else
    echo "Installed yarn $TOOL_VERSION"
  fi
}

# What makes a node_modules what it is: the package manager and its version, node, the
# manifests, and the settings that change what gets installed (not those that only say
# where from, such as the registry or a proxy).
modules_key() {
  local file
  {
    echo "$PACKAGE_MANAGER $TOOL_VERSION node $NODE_VERSION npm $NPM_VERSION stack ${STACK:-}"
    for file in package.json package-lock.json npm-shrinkwrap.json yarn.lock pnpm-lock.yaml pnpm-workspace.yaml .npmrc .yarnrc .yarnrc.yml; do
      [ -f "$BUILD_DIR/$file" ] && echo "$file" && cat "$BUILD_DIR/$file"
    done
    env | grep -i -E '^(npm_config_|yarn_|pnpm_config_|NODE_ENV=|USE_NPM_INSTALL=)' |
      grep -i -v -E '^(npm_config_|yarn_|pnpm_config_)(registry|_?proxy|https_proxy|http_proxy|noproxy|no_proxy|cafile|ca|strict_ssl|fetch_[a-z_]*|cache|cache_folder|store_dir|loglevel|userconfig|update_notifier|fund|audit|progress|color)=' |
      LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1
}

# Whether this install may be replaced by the node_modules an identical earlier install
# left in the cache. Only where a lockfile fixes the result and the app's own install
# scripts (which may write anywhere) do not run.
modules_reusable() {
  [ "$NODE_MODULES_CACHE" = true ] || return 1
  [ -e "$BUILD_DIR/node_modules" ] && return 1
  case $PACKAGE_MANAGER in
    npm) [ -f "$BUILD_DIR/package-lock.json" ] || [ -f "$BUILD_DIR/npm-shrinkwrap.json" ] || return 1 ;;
    yarn | pnpm) ;;
    *) return 1 ;;
  esac
  local script
  for script in preinstall install postinstall prepare; do
    script=pkg_script_${script}_defined
    [ "${!script}" = true ] && return 1
  done
  return 0
}

run_script() {
  local name=$1
  case $PACKAGE_MANAGER in
    yarn | yarn2) echo "Running $name (yarn)" && yarn run "$name" ;;
    pnpm) echo "Running $name" && pnpm run --if-present "$name" ;;
    *) echo "Running $name" && npm run "$name" --if-present ;;
  esac
}

install_dependencies() {
  local production=${NPM_CONFIG_PRODUCTION:-false}
  case $PACKAGE_MANAGER in
    yarn2)
      echo "Running 'yarn install' with yarn.lock"
      yarn install --immutable
      ;;
    yarn)
      echo "Installing node modules (yarn.lock)"
      yarn install --production="${YARN_PRODUCTION:-false}" --frozen-lockfile --ignore-engines --prefer-offline
      ;;
    pnpm)
      echo "Running 'pnpm install' with pnpm-lock.yaml"
      pnpm install --prod=false --frozen-lockfile
      ;;
    npm)
      if [ -e "$BUILD_DIR/node_modules" ] && [ "$PREBUILD" = true ]; then
        echo "Prebuild detected (node_modules already exists)"
        echo "Rebuilding any native modules"
        npm rebuild
        echo "Installing any new modules (package.json)"
        npm install --production="$production" --unsafe-perm --userconfig "$BUILD_DIR/.npmrc"
      elif [ "${USE_NPM_INSTALL:-}" != true ] && { [ -f package-lock.json ] || [ -f npm-shrinkwrap.json ]; }; then
        echo "Installing node modules"
        npm ci --production="$production" --unsafe-perm --userconfig "$BUILD_DIR/.npmrc"
      else
        echo "Installing node modules (package.json$([ -f package-lock.json ] && echo " + package-lock"))"
        npm install --production="$production" --unsafe-perm --userconfig "$BUILD_DIR/.npmrc"
      fi
      ;;
  esac
}

prune_devdependencies() {
  if [ "$NODE_ENV" = test ]; then
    echo "Skipping because NODE_ENV is 'test'"
  elif [ "$NODE_ENV" != production ]; then
    echo "Skipping because NODE_ENV is not 'production'"
  elif [ "$PACKAGE_MANAGER" = npm ] && [ -n "${NPM_CONFIG_PRODUCTION:-}" ]; then
    echo "Skipping because NPM_CONFIG_PRODUCTION is '$NPM_CONFIG_PRODUCTION'"
  elif [[ $PACKAGE_MANAGER == yarn* ]] && [ -n "${YARN_PRODUCTION:-}" ]; then
    echo "Skipping because YARN_PRODUCTION is '$YARN_PRODUCTION'"
  elif [ "$PACKAGE_MANAGER" = pnpm ] && [ "${PNPM_SKIP_PRUNING:-}" = true ]; then
    echo "Skipping because PNPM_SKIP_PRUNING is 'true'"
  elif [ "$PACKAGE_MANAGER" = yarn2 ] && [ "${YARN2_SKIP_PRUNING:-}" = true ]; then
    echo "Skipping because YARN2_SKIP_PRUNING is 'true'"
  elif [ "$pkg_dev_dependencies" = 0 ]; then
    # What the prune would remove is nothing: the lockfile installs no devDependency.
    echo "Nothing to prune: package.json declares no devDependencies"
  else
    case $PACKAGE_MANAGER in
      npm) npm prune --userconfig "$BUILD_DIR/.npmrc" ;;
      yarn) yarn install --frozen-lockfile --ignore-engines --ignore-scripts --prefer-offline ;;
      pnpm) pnpm prune --prod --ignore-scripts ;;
      yarn2)
        if [ "${TOOL_MAJOR:-0}" -ge 4 ]; then
          # Upstream prunes with a Yarn plugin of its own; Yarn 4 does the same by itself.
          echo "Running 'yarn workspaces focus --all --production'"
          yarn workspaces focus --all --production
        else
          echo "Skipping: pruning Yarn $TOOL_VERSION needs the official buildpack's Yarn plugin (Yarn 4 prunes by itself)"
        fi
        ;;
    esac
  fi
}

# The package manager's own cache in CACHE_DIR (as upstream saves it between builds).
configure_caches() {
  mkdir -p "$NODE_CACHE/cache"
  # Official buildpack: a cache the user set (NPM_CONFIG_CACHE) is kept.
  export npm_config_cache=${USER_NPM_CACHE:-"$NODE_CACHE/cache/npm"}
  case $PACKAGE_MANAGER in
    yarn) export YARN_CACHE_FOLDER=${YARN_CACHE_FOLDER:-"$NODE_CACHE/cache/yarn"} ;;
    yarn2)
      # Plug'n'Play reads the dependencies from the cache at run time: it stays in the app.
      if [ -n "$(ls -A "$BUILD_DIR/.yarn/cache" 2>/dev/null)" ] || ! grep -q -E '^nodeLinker: *"?node-modules' "$BUILD_DIR/.yarnrc.yml" 2>/dev/null; then
        export YARN_CACHE_FOLDER=${YARN_CACHE_FOLDER:-"$BUILD_DIR/.yarn/cache"}
      else
        export YARN_CACHE_FOLDER=${YARN_CACHE_FOLDER:-"$NODE_CACHE/cache/yarn"}
      fi
      export YARN_ENABLE_GLOBAL_CACHE=${YARN_ENABLE_GLOBAL_CACHE:-false}
      ;;
    pnpm)
      if [ "${TOOL_MAJOR:-0}" -ge 11 ]; then
        export pnpm_config_store_dir="$NODE_CACHE/cache/pnpm"
      else
        export npm_config_store_dir="$NODE_CACHE/cache/pnpm"
      fi
      ;;
  esac
  if [ "$NODE_MODULES_CACHE" != true ]; then
    rm -rf "$NODE_CACHE/cache" "$NODE_CACHE/modules"
  fi
}

install_and_build() {
  local key snapshot="$NODE_CACHE/modules" reused=false reusable=false
  PREBUILD=false
  [ -e "$BUILD_DIR/node_modules" ] && PREBUILD=true && warning "node_modules checked into source control"
  cd "$BUILD_DIR"
  configure_caches

  if [ "$pkg_script_scalingo_prebuild_defined" = true ]; then
    topic "Prebuild"
    run_script scalingo-prebuild 2>&1 | indent
  fi
  if [ "$pkg_script_heroku_prebuild_defined" = true ]; then
    echo "note: heroku-prebuild is Heroku's name; Scalingo runs scalingo-prebuild, so it is not run" | indent
  fi

  topic "Installing dependencies"
  key=$(modules_key)
  # Asked before the install, which creates node_modules.
  modules_reusable && reusable=true
  if $reusable && [ -f "$snapshot/key" ] && [ "$(cat "$snapshot/key")" = "$key" ]; then
    {
      echo "node_modules from the cache: the last install had the same lockfile, package.json, settings, node $NODE_VERSION and $PACKAGE_MANAGER $TOOL_VERSION"
      echo "(the platform installs afresh at each build; set NODE_MODULES_CACHE=false to do so here)"
    } | indent
    [ -d "$snapshot/node_modules" ] && cp -a "$snapshot/node_modules" "$BUILD_DIR/node_modules"
    reused=true
  else
    if ! install_dependencies 2>&1 | indent; then
      error "Installing the dependencies with $PACKAGE_MANAGER failed (output above)."
      exit 1
    fi
  fi
  if ! $reused; then
    rm -rf "$snapshot"
    if $reusable; then
      mkdir -p "$snapshot"
      [ -d "$BUILD_DIR/node_modules" ] && cp -a "$BUILD_DIR/node_modules" "$snapshot/node_modules"
      echo "$key" >"$snapshot/key"
    fi
  fi

  topic "Build"
  {
    if [ "$pkg_script_scalingo_postbuild_defined" = true ]; then
      [ "$pkg_script_build_defined" = true ] && echo "Detected both \"build\" and \"scalingo-postbuild\" scripts"
      run_script scalingo-postbuild
    elif [ "$pkg_script_build_defined" = true ] && [ "${NPM_NO_BUILD:-}" != true ]; then
      if [ -n "${NODE_BUILD_FLAGS:-}" ]; then
        echo "Running with $NODE_BUILD_FLAGS flags"
        case $PACKAGE_MANAGER in
          yarn | yarn2) yarn run build "$NODE_BUILD_FLAGS" ;;
          pnpm) pnpm run --if-present build -- "$NODE_BUILD_FLAGS" ;;
          *) npm run build --if-present -- "$NODE_BUILD_FLAGS" ;;
        esac
      else
        run_script build
      fi
    fi
    if [ "$pkg_script_heroku_postbuild_defined" = true ]; then
      echo "note: heroku-postbuild is Heroku's name; Scalingo runs scalingo-postbuild (or build), so it is not run"
    fi
  } 2>&1 | indent || {
    error "The build script failed (output above)."
    exit 1
  }

  topic "Pruning devDependencies"
  if ! prune_devdependencies 2>&1 | indent; then
    error "Pruning the devDependencies failed (output above)."
    exit 1
  fi

  if [ "$pkg_script_scalingo_cleanup_defined" = true ]; then
    topic "Cleanup"
    run_script scalingo-cleanup 2>&1 | indent || {
      error "The scalingo-cleanup script failed (output above)."
      exit 1
    }
  fi
}
