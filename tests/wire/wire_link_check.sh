#!/bin/sh
# wire_link_check.sh NM LIB...: the wire format, the base library and the protocol cores stay
# sans-IO. Fails if any of the static libraries given needs YAML, HDF5, gRPC, jansson, a
# stdio/file/clock call or mutual's logger (their undefined symbols, from nm).
nm=$1
shift
bad=$("$nm" -u "$@" | awk '{print $2}' | grep -E \
    '^(yaml_|H5|grpc_|json_|f?printf$|v?fprintf$|puts$|fputs$|fwrite$|fopen$|fdopen$|open$|'\
'write$|read$|stderr$|stdout$|clock_gettime$|time$|gettimeofday$|exit$|perror$|f?putc$|putchar$|'\
'fflush$|vprintf$|__v?f?printf_chk$|mu_log$|mu_now$|mu_progress_)' | sort -u)
if [ -n "$bad" ]; then
    echo "wire_link_check: $* need: $bad" >&2
    exit 1
fi
echo "wire_link_check: $# libraries, no YAML/HDF5/gRPC/jansson/stdio/clock symbols"
