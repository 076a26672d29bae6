#include <stdio.h>
#include <stdlib.h>
#include "chain/common.h"

const char *chain_err_str(int err)
{
    switch (err) {
    case CHAIN_OK:
        return "ok";
    case CHAIN_ERR_SHORT_BUFFER:
        return "output buffer too small";
    case CHAIN_ERR_SYNTAX:
        return "invalid character";
    case CHAIN_ERR_LENGTH:
        return "invalid length";
    case CHAIN_ERR_OVERFLOW:
        return "value out of range";
    case CHAIN_ERR_PRECISION:
        return "too many fractional digits";
    case CHAIN_ERR_CHECKSUM:
        return "bad EIP-55 checksum";
    case CHAIN_ERR_TRUNCATED:
        return "truncated RLP";
    case CHAIN_ERR_NONCANONICAL:
        return "non-canonical RLP";
    case CHAIN_ERR_DEPTH:
        return "RLP nested too deep";
    case CHAIN_ERR_TYPE:
        return "unexpected RLP item type";
    case CHAIN_ERR_TRAILING:
        return "trailing bytes";
    case CHAIN_ERR_STATE:
        return "RLP lists not balanced";
    case CHAIN_ERR_SIGNATURE:
        return "malformed signature";
    case CHAIN_ERR_SIGNER:
        return "signature by another address";
    case CHAIN_ERR_KEY:
        return "invalid private key";
    case CHAIN_ERR_PERMISSION:
        return "key file accessible by group or others";
    case CHAIN_ERR_IO:
        return "file not readable";
    case CHAIN_ERR_MISMATCH:
        return "domain or chain id mismatch";
    case CHAIN_ERR_EXPIRED:
        return "expired";
    case CHAIN_ERR_NOT_YET:
        return "not yet valid";
    case CHAIN_ERR_UNSUPPORTED:
        return "unsupported";
    case CHAIN_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

void chain__assert_fail(const char *expr, const char *file, int line)
{
    /* fprintf, not the project logger: chain/ must not depend on runtime/ for this, and the
     * process is about to abort anyway */
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
