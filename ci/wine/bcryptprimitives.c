/* A stand-in bcryptprimitives.dll for wine 8, which lacks it. Rust's standard library
 * (1.78 and later) imports ProcessPrng from it for random numbers; this forwards to
 * advapi32's RtlGenRandom (exported as SystemFunction036), which wine has.
 * Built in CI with mingw-w64 (.ci/run) and copied into the wine prefix's system32. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
