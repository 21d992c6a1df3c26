/* A test aid for running the Windows build under wine, never shipped: Rust's
 * std takes its random bytes from bcryptprimitives.dll!ProcessPrng, which
 * wine 8 does not have. This stub, placed beside the .exe, answers it from
 * RtlGenRandom (advapi32's SystemFunction036). Built by tests/windows.rs:
 *   x86_64-w64-mingw32-gcc -shared -o bcryptprimitives.dll \
 *     bcryptprimitives.c bcryptprimitives.def -ladvapi32 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
