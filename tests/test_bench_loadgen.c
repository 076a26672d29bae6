/* The bench's load generator: its latency histograms keep every quantile within their stated
 * precision, and against the real intentd binary and PostgreSQL it reports exactly what it did
 * (every created intent it counts is a row, every sign-in a session) and, in open loop, accounts
 * for every arrival the schedule made, answered or not. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "bench/loadgen.h"
#include "support/api_server.h"

#define REGISTRY "0x5FbDB2315678afecb367f032d93F642f64180aa3"
#define USDC "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

/* the rate limits stay on (as in the bench) but out of reach of a few hundred requests */
static const char *const env[] = {"INTENT_CONTRACT_ADDRESS=" REGISTRY, "USDC_ADDRESS=" USDC,
                                  "API_RATE_LIMIT=1000000", "USER_RATE_LIMIT=1000000", NULL};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(loadgen_hist, quantiles_within_one_sixty_fourth_and_merge_adds_up)
{
    enum { N = 100000 };
    static uint64_t values[N];
    static lg_hist_t all, a, b;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i != N; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        values[i] = x % (1u << (x % 28)); /* spread over 0 .. 2^27 us */
        lg_hist_record(&all, values[i]);
        lg_hist_record(i % 2 ? &a : &b, values[i]);
    }
    qsort(values, N, sizeof(values[0]), cmp_u64);
    const double qs[] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0};
    for (size_t i = 0; i != sizeof(qs) / sizeof(qs[0]); ++i) {
        size_t rank = (size_t)(qs[i] * N + 0.999999);
        uint64_t exact = values[rank == 0 ? 0 : rank - 1], got = lg_hist_quantile(&all, qs[i]);
        cr_assert(got >= exact && (double)(got - exact) <= (double)exact / 64.0 + 1.0,
                  "q %.3f: exact %lu, histogram %lu", qs[i], (unsigned long)exact,
                  (unsigned long)got);
    }
    cr_assert_eq(lg_hist_quantile(&all, 1.0), values[N - 1]);
    lg_hist_merge(&a, &b);
    cr_assert_eq(memcmp(a.counts, all.counts, sizeof(a.counts)), 0);
    cr_assert_eq(a.total, N);
    json_t *j = lg_hist_json(&all, true);
    json_int_t sum = 0;
    size_t k;
    json_t *bucket;
    json_array_foreach(json_object_get(j, "buckets"), k, bucket) sum +=
        json_integer_value(json_array_get(bucket, 1));
    cr_assert_eq(sum, N);
    json_decref(j);
}

/* Runs the loadgen binary with `args` against the test's server; its JSON report, parsed. */
static json_t *loadgen(const char *args)
{
    char cmd[1024], json_path[64];
    snprintf(json_path, sizeof(json_path), "/tmp/loadgen-test-%d.json", (int)getpid());
    unlink(json_path);
    snprintf(cmd, sizeof(cmd),
             "INTENT_CONTRACT_ADDRESS=" REGISTRY " USDC_ADDRESS=" USDC " CHAIN_ID=31337 "
             "%s %s --url http://127.0.0.1:%d --json %s >/dev/null",
             LOADGEN_BIN, args, port, json_path);
    int rc = system(cmd);
    cr_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s", cmd);
    json_t *j = json_load_file(json_path, 0, NULL);
    unlink(json_path);
    return j;
}

static json_int_t num(json_t *j, const char *path_a, const char *path_b, const char *field)
{
    json_t *o = j;
    if (path_a != NULL)
        o = json_object_get(o, path_a);
    if (path_b != NULL)
        o = json_object_get(o, path_b);
    return json_integer_value(json_object_get(o, field));
}

/* Two readings of /proc/stat as Linux writes it: the total line's columns are summed into busy
 * (user, nice, system, irq, softirq), idle (idle, iowait) and steal; guest time is not counted
 * again; the CPUs are the cpuN lines. */
Test(loadgen_machine, reads_the_total_line_and_shares_the_time_between_two_readings)
{
    static const char a_text[] = "cpu  100 10 50 800 20 5 15 40 7 0\n"
                                 "cpu0 50 5 25 400 10 2 8 20 7 0\n"
                                 "cpu1 50 5 25 400 10 3 7 20 0 0\n"
                                 "intr 12345 0 0\nctxt 999\nbtime 1795000000\nprocesses 42\n";
    static const char b_text[] = "cpu  400 10 150 1400 20 5 35 100 9 0\n"
                                 "cpu0 200 5 75 700 10 2 18 50 9 0\n"
                                 "cpu1 200 5 75 700 10 3 17 50 0 0\n";
    lg_machine_t a, b;
    cr_assert(lg_machine_parse(a_text, &a));
    cr_assert_eq(a.busy, 100 + 10 + 50 + 5 + 15);
    cr_assert_eq(a.idle, 800 + 20);
    cr_assert_eq(a.steal, 40);
    cr_assert_eq(a.cpus, 2);
    cr_assert(lg_machine_parse(b_text, &b));
    double busy = -1, steal = -1;
    cr_assert(lg_machine_share(&a, &b, &busy, &steal));
    /* busy +420, idle +600, steal +60 */
    cr_assert_float_eq(busy, 420.0 / 1080.0, 1e-12);
    cr_assert_float_eq(steal, 60.0 / 1080.0, 1e-12);
    /* no time passed, counters going back, a CPU more, or a reading that failed: unknown */
    cr_assert_not(lg_machine_share(&a, &a, &busy, &steal));
    cr_assert_not(lg_machine_share(&b, &a, &busy, &steal));
    lg_machine_t three = b;
    three.cpus = 3;
    cr_assert_not(lg_machine_share(&a, &three, &busy, &steal));
    lg_machine_t none = {0};
    cr_assert_not(lg_machine_share(&none, &b, &busy, &steal));
    /* not /proc/stat's shape */
    cr_assert_not(lg_machine_parse("", &a));
    cr_assert_not(lg_machine_parse("cpu0 1 2 3 4 5 6 7 8\n", &a));
    cr_assert_not(lg_machine_parse("cpu  1 2 3\n", &a));
    cr_assert_not(lg_machine_parse("cpu  1 2 3 4 5 6 7 8\n", &a)); /* no cpuN line */
    /* this machine's own counters read */
    cr_assert(lg_machine_read(&a));
    cr_assert_eq(a.cpus, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
}

Test(loadgen, counts_what_it_did_against_intentd, .timeout = 120, .fini = kill_leftover_server)
{
    start_server_env(env);
    char state[64], args[512];
    snprintf(state, sizeof(state), "/tmp/loadgen-test-%d.state", (int)getpid());
    /* five wallets sign in and create three inline-signed intents each */
    snprintf(args, sizeof(args), "setup --users 5 --intents 3 --connections 4 --state %s", state);
    json_decref(loadgen(args));
    cr_assert_str_eq(db_value("SELECT count(*) FROM users"), "5");
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents WHERE status = 'active'"), "15");
    json_t *st = json_load_file(state, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(st, "users")), 5);
    json_decref(st);

    /* closed loop: every create it counts as answered 2xx is a row, and nothing else is */
    snprintf(args, sizeof(args),
             "run --state %s --mix create=1 --presign 20 --connections 4 --duration 0.5 "
             "--warmup 0",
             state);
    json_t *r = loadgen(args);
    json_int_t created = num(r, "kinds", "create", "ok");
    cr_assert_gt(created, 0);
    cr_assert_eq(num(r, "kinds", "create", "errors"), 0);
    char expect[32];
    snprintf(expect, sizeof(expect), "%lld", (long long)(created + 15));
    cr_assert_str_eq(db_value("SELECT count(*) FROM intents"), expect);
    json_decref(r);

    /* open loop: 100 arrivals per second for a second, each one accounted for */
    snprintf(args, sizeof(args),
             "run --state %s --mix get=1,list=1 --rate 100 --connections 4 --duration 1 "
             "--warmup 0",
             state);
    r = loadgen(args);
    json_int_t arrivals = num(r, NULL, NULL, "ok") + num(r, NULL, NULL, "errors") +
                          num(r, NULL, NULL, "dropped") + num(r, NULL, NULL, "unanswered");
    cr_assert(arrivals >= 99 && arrivals <= 101, "%lld arrivals", (long long)arrivals);
    cr_assert_eq(num(r, NULL, NULL, "errors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "mode")), "open");
    /* per 100 ms: [s, answers/s, errors/s, slowest ms]; the slots hold the run's answers (but
     * the few that came after its end) and their slowest is at most the run's slowest answer */
    size_t i;
    json_t *slot;
    json_int_t answered = 0;
    double slowest_ms = 0;
    json_array_foreach(json_object_get(r, "timeline_per_s"), i, slot)
    {
        cr_assert_eq(json_array_size(slot), 4);
        answered += json_integer_value(json_array_get(slot, 1)) / 10;
        double ms = json_number_value(json_array_get(slot, 3));
        slowest_ms = ms > slowest_ms ? ms : slowest_ms;
    }
    json_int_t ok = num(r, NULL, NULL, "ok");
    cr_assert(answered <= ok && answered >= ok - 5, "%lld of %lld in the timeline",
              (long long)answered, (long long)ok);
    double max_ms = (double)num(r, "latency", NULL, "max_us") / 1000.0;
    cr_assert(slowest_ms > 0 && slowest_ms <= max_ms + 0.001,
              "slowest per slot %.3f ms, run max %.3f ms", slowest_ms, max_ms);
    /* the machine's CPUs over the window: this machine's count, shares of one whole */
    json_t *machine = json_object_get(r, "machine_cpu");
    cr_assert(json_is_object(machine));
    cr_assert_eq(json_integer_value(json_object_get(machine, "cpus")),
                 sysconf(_SC_NPROCESSORS_ONLN));
    double busy = json_number_value(json_object_get(machine, "busy")),
           steal = json_number_value(json_object_get(machine, "steal"));
    cr_assert(busy > 0 && busy <= 1 && steal >= 0 && busy + steal <= 1, "busy %f, steal %f", busy,
              steal);
    json_decref(r);
    unlink(state);
    stop_server();
}
