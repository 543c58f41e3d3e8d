#!/usr/bin/env bash
# The platform's defaults, read by bin/detect and bin/compile.

# Official buildpack: nodejs-data's RECOMMENDED_LTS_VERSION, used when package.json asks
# for no version, and the line a wide range is held to.
NODE_DEFAULT_RANGE="24.x"
# Official buildpack (install_yarn): the Yarn installed when yarn.lock asks for none.
YARN_DEFAULT_RANGE="1.22.x"
