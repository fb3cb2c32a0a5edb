#!/bin/sh
# Installs the Chromium that tests/test_browser.py drives, where the system's package manager can; else says how.
# playwright (the dev extra) drives this system binary and downloads no browser of its own.
set -eu
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then echo "browser for the tests: $(command -v "$name")"; exit 0; fi
done
if [ -n "${RNNBENCH_CHROMIUM:-}" ] && [ -x "$RNNBENCH_CHROMIUM" ]; then
  echo "browser for the tests: $RNNBENCH_CHROMIUM (RNNBENCH_CHROMIUM)"; exit 0
fi
case "$(uname -s)" in
  Darwin)
    for app in "/Applications/Chromium.app/Contents/MacOS/Chromium" \
               "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"; do
      if [ -x "$app" ]; then echo "browser for the tests: $app"; exit 0; fi
    done
    if command -v brew >/dev/null 2>&1; then exec brew install --cask chromium; fi
    echo "no Chromium: install Homebrew's (brew install --cask chromium) or Google Chrome," \
         "or set RNNBENCH_CHROMIUM to a Chromium binary" >&2
    exit 1 ;;
esac
if command -v apt-get >/dev/null 2>&1; then
  # Debian's package: a root shell installs directly, anyone else through sudo
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q && $sudo apt-get install -y -q chromium && exit 0
fi
for manager in dnf zypper pacman; do
  if command -v "$manager" >/dev/null 2>&1; then
    echo "no Chromium: install your distribution's chromium package with $manager," \
         "or set RNNBENCH_CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
done
echo "no Chromium and no package manager this script knows: install Chromium," \
     "or set RNNBENCH_CHROMIUM to its binary" >&2
exit 1
