/*
 * RFC 3339 timestamps ("2026-11-21T09:00:00Z", "2021-09-30T16:25:24.123+02:00") to and from
 * unix seconds, for Sign-In with Ethereum messages and the API's times.
 *
 * Written here rather than taken from libc on purpose: strptime has no portable directive for
 * the "+02:00" offset (glibc's %z is a GNU extension that also takes "+0200" and "Z" loosely)
 * nor for fractional seconds, it accepts fields with fewer digits than RFC 3339 demands, and
 * timegm is not standard C. The grammar is small enough to check exactly: date-time =
 * full-date "T" full-time, with 4-digit year, 2-digit fields, optional "." 1*DIGIT fraction and
 * "Z" or +hh:mm / -hh:mm, "T" and "Z" in either case (RFC 3339 section 5.6, note). No I/O, no
 * locale, no time zone database.
 */
#ifndef CHAIN_RFC3339_H
#define CHAIN_RFC3339_H

#include <stddef.h>
#include <stdint.h>
#include "chain/common.h"

/** Buffer size for chain_rfc3339_format: "YYYY-MM-DDTHH:MM:SSZ" and the NUL. */
#define CHAIN_RFC3339_SIZE 21

/**
 * Parses exactly the `len` characters of `s` as an RFC 3339 date-time into unix seconds (UTC,
 * the offset applied). The fraction is returned in `*frac_ns` (may be NULL) truncated to
 * nanoseconds; the seconds are never rounded up. A leap second (":60") is accepted, as the RFC
 * allows, and counted as the second before it, since unix time has no place for it. The day
 * must exist in its month (leap years included). Returns CHAIN_OK, or CHAIN_ERR_SYNTAX; outputs
 * are set only on success.
 */
int chain_rfc3339_parse(const char *s, size_t len, int64_t *unix_s, uint32_t *frac_ns);

/**
 * Writes unix seconds `unix_s` as "YYYY-MM-DDTHH:MM:SSZ". Returns CHAIN_OK, or
 * CHAIN_ERR_OVERFLOW for a time outside the years 0000 to 9999 (nothing written then).
 */
int chain_rfc3339_format(int64_t unix_s, char out[CHAIN_RFC3339_SIZE]);

#endif
