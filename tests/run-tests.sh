#!/bin/sh
# The whole test suite on a fresh Debian 12 machine, as root:
#   sh tests/run-tests.sh
# Installs what the build and the tests need, then:
#   1. builds into ./build, runs the unit suite (cmocka) and the system
#      suite (pytest against real mounts);
#   2. builds the libFuzzer harnesses with clang into ./build-fuzz and runs
#      each for FUZZ_SECONDS (default 30) on its seed corpus;
#   3. builds with AddressSanitizer and UBSan into ./build-asan and runs the
#      unit and system suites against it;
#   4. runs the unit suite of ./build under valgrind memcheck.
# Any failure fails the run. About 27 minutes on two cores; the time of
# each stage is printed at the end.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "run-tests: run as root (the system tests mount FUSE filesystems)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential meson ninja-build pkg-config \
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libssl-dev \
	libseccomp-dev \
	libcmocka-dev openssl ca-certificates \
	python3 python3-pytest python3-hvac python3-botocore python3-boto3 \
	python3-h2 python3-jwt python3-cryptography python3-kubernetes \
	python3-yaml util-linux procps podman runc busybox-static \
	systemd apparmor prometheus rsyslog \
	clang libclang-rt-14-dev valgrind gdb >/dev/null
# gdb: gcore, for tests/system/test_registers.py (no value in any register).
# prometheus: promtool and the binary tests/system/test_metrics.py starts on a
# loopback port of its own; the package's service (on :9090) is not used.
# rsyslog: rsyslogd, which tests/system/test_central_audit.py starts twice
# with configs of its own (no /dev/log); the system's instance is not used.
# Node.js and npm, for tests/system/test_k8s_deploy.py (the kubernetes-models
# schemas): Debian's, unless the machine has a Node.js of its own, whose npm
# comes with it (Debian's npm conflicts with such a nodejs).
if ! command -v npm >/dev/null; then
	apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# Thirteen fuzzers, two at a time on two cores: 30 s each is about 4 minutes.
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

times=""
stage_start=0
stage() {
	stage_start=$(date +%s)
	echo "run-tests: === $1 ==="
}
stage_end() {
	times="$times$(printf '  %-44s %4d s' "$1" $(($(date +%s) - stage_start)))
"
}
trap 'printf "run-tests: stage times\n%s" "$times"' EXIT

# --- 1. unit and system suites -------------------------------------------
stage "build"
# test_hooks: SIGUSR2 makes the fetcher break its seccomp allow-list, for
# tests/system/test_privsep.py. The quickstart builds without it.
if [ ! -d build ]; then
	meson setup build -Dtest_hooks=true
else
	meson configure build -Dtest_hooks=true
fi
ninja -C build
stage_end "build"

# meson prints each test's own closing lines into build/meson-logs.
stage "unit"
meson test -C build --verbose --suite unit
stage_end "unit"
stage "system"
meson test -C build --verbose --suite system
stage_end "system"

# Stages 2 to 4 each run even when an earlier one failed, so that one run
# shows every problem; the run fails at the end if any of them did. (In a
# function called with ||, set -e is off: every step says || return 1.)
failed=""

# --- 2. fuzzers -----------------------------------------------------------
# A crash fails its test and leaves the input in
# build-fuzz/tests/fuzz/artifacts/; add it to tests/fuzz/seeds/<name>/.
fuzz() {
	if [ ! -d build-fuzz ]; then
		CC=clang meson setup build-fuzz -Dfuzz=true -Dunit_tests=false \
		    -Dsystem_tests=false -Dfuzz_seconds="$FUZZ_SECONDS" || return 1
	else
		meson configure build-fuzz -Dfuzz_seconds="$FUZZ_SECONDS" ||
		    return 1
	fi
	ninja -C build-fuzz || return 1
	meson test -C build-fuzz --suite fuzz --print-errorlogs
}
stage "fuzz (build, ${FUZZ_SECONDS} s per fuzzer)"
fuzz || failed="$failed fuzz"
stage_end "fuzz (build, ${FUZZ_SECONDS} s per fuzzer)"

# --- 3. AddressSanitizer + UBSan --------------------------------------------
# Every instrumented process (unit tests, and the daemons the system tests
# start, whose exit status most tests never look at) writes its reports to
# build-asan/sanitizer-reports/{asan,ubsan}.<pid> instead of stderr. Any
# error report found there after the suites fails the run, so a leak seen
# when a daemon exits counts as much as a failed test.
sanitizers() {
	reports=$(pwd)/build-asan/sanitizer-reports
	bad=0
	if [ ! -d build-asan ]; then
		meson setup build-asan -Db_sanitize=address,undefined \
		    -Db_lundef=false -Dc_args=-fno-sanitize-recover=all \
		    -Dtest_hooks=true || return 1
	fi
	ninja -C build-asan || return 1
	rm -rf "$reports"
	mkdir -p "$reports" || return 1
	(
		export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan"
		export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
		meson test -C build-asan --print-errorlogs --suite unit || bad=1
		meson test -C build-asan --print-errorlogs --suite system ||
		    bad=1
		exit "$bad"
	) || bad=1
	# ASan may also leave mere warnings there: only errors count.
	for f in "$reports"/*; do
		[ -e "$f" ] || continue
		echo "run-tests: sanitizer report $f:"
		cat "$f"
		if grep -q -e 'ERROR: ' -e 'runtime error: ' "$f"; then
			bad=1
		fi
	done
	return "$bad"
}
stage "asan+ubsan (build, unit, system)"
sanitizers || failed="$failed sanitizers"
stage_end "asan+ubsan (build, unit, system)"

# --- 4. valgrind memcheck on the unit suite ---------------------------------
# (its C tests: the layering scripts of suite 'layers' are not ours to check)
# One false report is suppressed: with _FORTIFY_SOURCE, memmove() becomes
# __memmove_chk, which glibc's x86-64 string functions implement at the
# same address as __memcpy_chk; valgrind then checks the memmove under
# memcpy's rules and calls its (allowed) overlap an error. Only an overlap
# in a __memcpy_chk reached from an inlined memmove is ignored.
memcheck() {
	printf '%s\n' '{' '   fortified-memmove-seen-as-memcpy_chk' \
	    '   Memcheck:Overlap' '   fun:__memcpy_chk' '   fun:memmove' '}' \
	    >build/valgrind.supp || return 1
	meson test -C build --print-errorlogs --suite unit --no-suite layers \
	    --timeout-multiplier 10 --wrap="valgrind --error-exitcode=1 \
	    --leak-check=full --errors-for-leak-kinds=definite \
	    --child-silent-after-fork=yes --quiet \
	    --suppressions=$(pwd)/build/valgrind.supp"
}
stage "valgrind (unit)"
memcheck || failed="$failed valgrind"
stage_end "valgrind (unit)"

if [ -n "$failed" ]; then
	echo "run-tests: failed:$failed" >&2
	exit 1
fi
