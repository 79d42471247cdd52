#!/usr/bin/env python3
"""Adds placeholder lock entries for optional platform binaries the registry does not serve.

npm 11.16+ (npm/cli#9846) leaves such "unavailable optional dependencies" out of package-lock.json after
`npm install`, then `npm ci` rejects its own lockfile ("Missing: … from lock file"). An entry with the package's
os/cpu lets `npm ci` skip it as a foreign platform, as npm 11.13 did. After changing dependencies, run:

    npm ci --dry-run 2>&1 | python3 scripts/lockfile-placeholders.py package-lock.json
"""
import json
import re
import sys

OSES = r"(darwin|linux|win32|android|freebsd|openharmony)"
CPUS = r"(arm64|x64|ia32|loong64|ppc64|riscv64|s390x|arm)"


def main(path: str) -> None:
    missing = re.findall(r"Missing: (\S+?)@\S* from lock file", sys.stdin.read())
    lock = json.load(open(path))
    packages = lock["packages"]
    added = 0
    for name in missing:
        key = f"node_modules/{name}"
        if key in packages:
            continue
        parent = next((m for m in packages.values() if name in m.get("optionalDependencies", {})), None)
        suffix = name.split("/")[-1]
        os_match = re.search(OSES, suffix)
        if parent is None or os_match is None:
            print(f"skipped {name}: no parent or no platform in its name", file=sys.stderr)
            continue
        cpu_match = re.search(CPUS, suffix.split(os_match.group(1), 1)[1])
        entry = {"version": parent["optionalDependencies"][name], "optional": True, "os": [os_match.group(1)]}
        if cpu_match:
            entry["cpu"] = [cpu_match.group(1)]
        if re.search(r"gnu(eabihf)?$", suffix):
            entry["libc"] = ["glibc"]
        if re.search(r"musl(eabihf)?$", suffix):
            entry["libc"] = ["musl"]
        if parent.get("dev"):
            entry["dev"] = True
        packages[key] = entry
        added += 1
    lock["packages"] = dict(sorted(packages.items(), key=lambda kv: (kv[0] != "", kv[0])))
    with open(path, "w") as out:
        json.dump(lock, out, indent=2)
        out.write("\n")
    print(f"added {added} placeholder(s)")


if __name__ == "__main__":
    main(sys.argv[1])
