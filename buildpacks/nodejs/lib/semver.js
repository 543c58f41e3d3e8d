// Version questions the buildpack asks, answered with npm's own semver module (the same
// rules npm and the official buildpack's resolver apply to package.json ranges).
//
//   node semver.js MODULE_DIRS COMMAND RANGE [ARG]   versions on stdin, one per line
//
// MODULE_DIRS: ':'-separated folders that may hold npm's `semver` package.
// Commands (exit 2: nothing matches, 3: the range is not valid semver):
//   node RANGE LTS_RANGE   the Node.js version to install, as the official resolver picks
//                          it: the newest that satisfies RANGE, held to the newest of the
//                          LTS line when RANGE also allows that line (unless
//                          NODEJS_ALLOW_WIDE_RANGE=true); prints `version wide capped`
//   max RANGE              the newest version that satisfies RANGE
//   nearest RANGE          the version closest to what RANGE asks (for SHIPWAY_NEAREST_VERSION)
//   valid RANGE            prints the normalized range
"use strict";
const fs = require("fs");
const path = require("path");

function loadSemver(dirs) {
  for (const dir of dirs.split(":").filter(Boolean)) {
    try {
      return require(path.resolve(dir));
    } catch (_) {}
  }
  try {
    return require("semver");
  } catch (_) {
    process.stderr.write("no semver module found (looked in: " + dirs + ")\n");
    process.exit(4);
  }
}

const [dirs, command, rawRange, arg] = process.argv.slice(2);
const semver = loadSemver(dirs || "");

// package.json ranges as the official resolver reads them: "latest" is any version, and
// Python-style "~=" means "~".
function normalize(range) {
  const trimmed = String(range || "").trim();
  if (trimmed === "latest") return "*";
  if (trimmed.startsWith("~=")) return "~" + trimmed.slice(2);
  return trimmed;
}

const range = semver.validRange(normalize(rawRange));
if (range === null) {
  process.stderr.write(`"${rawRange}" is not a valid semver range\n`);
  process.exit(3);
}
const versions = fs
  .readFileSync(0, "utf8")
  .split(/\s+/)
  .filter((v) => semver.valid(v) && !semver.prerelease(v));

const newest = (list) => list.reduce((a, b) => (a === null || semver.gt(b, a) ? b : a), null);

switch (command) {
  case "valid":
    console.log(range);
    break;
  case "max": {
    const found = newest(versions.filter((v) => semver.satisfies(v, range)));
    if (found === null) process.exit(2);
    console.log(found);
    break;
  }
  case "node": {
    const matching = versions.filter((v) => semver.satisfies(v, range));
    let found = newest(matching);
    if (found === null) process.exit(2);
    const major = semver.major(found);
    // A range that also allows the next or the previous major is "wide".
    const wide = semver.satisfies(`${major + 1}.0.0`, range) || (major > 0 && semver.satisfies(`${major - 1}.0.0`, range));
    let capped = false;
    const lts = newest(versions.filter((v) => semver.satisfies(v, arg)));
    if (process.env.NODEJS_ALLOW_WIDE_RANGE !== "true" && lts !== null) {
      const ltsMajor = semver.major(lts);
      const ceiling = newest(matching.filter((v) => semver.major(v) === ltsMajor));
      if (ceiling !== null && semver.gt(found, ceiling)) {
        found = ceiling;
        capped = true;
      }
    }
    console.log(`${found} ${wide} ${capped}`);
    break;
  }
  case "nearest": {
    // Closest to the smallest version the range allows: the same major first, then the
    // nearest major (the higher one on a tie); within a major, the newest.
    const target = semver.minVersion(range);
    if (target === null || versions.length === 0) process.exit(2);
    const distance = (v) => Math.abs(semver.major(v) - target.major) * 2 + (semver.major(v) < target.major ? 1 : 0);
    const best = Math.min(...versions.map(distance));
    console.log(newest(versions.filter((v) => distance(v) === best)));
    break;
  }
  default:
    process.stderr.write(`unknown command ${command}\n`);
    process.exit(4);
}
