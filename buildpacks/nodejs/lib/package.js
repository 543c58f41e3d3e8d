// Reads package.json once and prints what the build needs as shell assignments (one node
// start instead of one per field). Exit 2 with a message when it is not valid JSON.
//
//   node package.js BUILD_DIR/package.json
"use strict";
const fs = require("fs");

let pkg;
try {
  pkg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
} catch (e) {
  process.stderr.write(String(e.message).split("\n")[0] + "\n");
  process.exit(2);
}
if (pkg === null || typeof pkg !== "object" || Array.isArray(pkg)) {
  process.stderr.write("its top level is not an object\n");
  process.exit(2);
}

const quote = (v) => "'" + String(v).replace(/'/g, "'\\''") + "'";
const text = (v) => (typeof v === "string" ? v : v == null ? "" : JSON.stringify(v));
const out = [];
const set = (name, value) => out.push(`${name}=${quote(value)}`);

const engines = pkg.engines && typeof pkg.engines === "object" ? pkg.engines : {};
set("pkg_engines_node", text(engines.node));
set("pkg_engines_npm", text(engines.npm));
set("pkg_engines_yarn", text(engines.yarn));
set("pkg_engines_pnpm", text(engines.pnpm));
set("pkg_engines_iojs", text(engines.iojs));
set("pkg_package_manager", text(pkg.packageManager));

const scripts = pkg.scripts && typeof pkg.scripts === "object" ? pkg.scripts : {};
for (const name of ["scalingo-prebuild", "build", "scalingo-postbuild", "scalingo-cleanup", "heroku-prebuild", "heroku-postbuild", "heroku-cleanup", "start", "preinstall", "install", "postinstall", "prepare"]) {
  const var_ = "pkg_script_" + name.replace(/[^A-Za-z0-9]/g, "_");
  set(var_ + "_defined", Object.prototype.hasOwnProperty.call(scripts, name) ? "true" : "false");
  set(var_, text(scripts[name]));
}
const count = (o) => (o && typeof o === "object" ? Object.keys(o).length : 0);
set("pkg_dev_dependencies", count(pkg.devDependencies));
set("pkg_dependencies", count(pkg.dependencies));
const dirs = Array.isArray(pkg.cacheDirectories) ? pkg.cacheDirectories : Array.isArray(pkg.cache_directories) ? pkg.cache_directories : [];
set("pkg_cache_directories", dirs.filter((d) => typeof d === "string").join("\n"));
console.log(out.join("\n"));
