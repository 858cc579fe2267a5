"""Builds the Rust library with cargo and ships it inside the package.

The binding is ctypes over the C ABI (include/knsock.h), so the only native artifact is
libknsock.so, built from the repository this directory belongs to:

- KNSOCK_SOURCE_DIR: the repository root (default: two levels up, found by its Cargo.toml).
- CARGO_TARGET_DIR: cargo's own variable; unset, cargo uses the repository's target/, so a tree
  where `cargo build --release` already ran builds nothing twice.
- KNSOCK_LIBRARY: a prebuilt libknsock.so to ship instead of running cargo.
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def source_dir() -> Path:
    explicit = os.environ.get("KNSOCK_SOURCE_DIR")
    root = Path(explicit) if explicit else HERE.parents[1]
    if not (root / "Cargo.toml").is_file():
        raise SystemExit(
            "knsock: no Cargo.toml in %s; set KNSOCK_SOURCE_DIR to the knsock repository, or "
            "KNSOCK_LIBRARY to a built libknsock.so" % root)
    return root


def build_library() -> Path:
    prebuilt = os.environ.get("KNSOCK_LIBRARY")
    if prebuilt:
        return Path(prebuilt)
    root = source_dir()
    subprocess.check_call(["cargo", "build", "--release", "--locked", "--lib"], cwd=root)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
    if not target.is_absolute():
        target = root / target
    return target / "release" / "libknsock.so"


class BuildPyWithCargo(build_py):
    def run(self):
        super().run()
        lib = build_library()
        dest = Path(self.build_lib) / "knsock" / "libknsock.so"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithCargo}, distclass=BinaryDistribution)
