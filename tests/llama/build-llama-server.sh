#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the pinned llama-cpp-python source package and caches
# the binary outside the repository, keyed by version. Builds only when the binary is missing.
# Prints the path of the binary on its last line.
set -euo pipefail

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
cache_root="${PARLEY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/parley}"
dest="$cache_root/llama-server-$version"
binary="$dest/llama-server"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

for tool in cmake ninja cc c++; do
  command -v "$tool" >/dev/null || { echo "build-llama-server: '$tool' is missing (install cmake, ninja-build, gcc, g++)" >&2; exit 3; }
done

python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/parley-llama-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "build-llama-server: building llama-server $version (a few minutes on 2 cores)" >&2
"$python" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d . >&2
tar xzf "llama_cpp_python-$version.tar.gz"
cmake -S "llama_cpp_python-$version/vendor/llama.cpp" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2
cmake --build build --target llama-server -j"$(nproc)" >&2
mkdir -p "$dest"
cp build/bin/llama-server "$dest/llama-server.tmp"
mv "$dest/llama-server.tmp" "$binary"
echo "$binary"
