#include "store/migrate.h"
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include "runtime/log.h"

/* Any constant, the same in every intentd process: the key of the migration advisory lock. */
#define MIGRATION_LOCK_KEY 0x696e74656e7464LL /* "intentd" */

static bool exec_ok(PGconn *pg, const char *sql, char *err, size_t err_size)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/* Highest version recorded, or -1 on error. */
static int current_version(PGconn *pg, char *err, size_t err_size)
{
    PGresult *res = PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int version = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        version = atoi(PQgetvalue(res, 0, 0));
    else
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return version;
}

static bool apply_one(PGconn *pg, const store_migration_t *m, char *err, size_t err_size)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = {version, m->name};
    if (!exec_ok(pg, "BEGIN", err, err_size))
        return false;
    if (!exec_ok(pg, m->sql, err, err_size)) {
        char detail[512];
        snprintf(detail, sizeof(detail), "migration %03d_%s: %s", m->version, m->name, err);
        snprintf(err, err_size, "%s", detail);
        PQclear(PQexec(pg, "ROLLBACK"));
        return false;
    }
    PGresult *res =
        PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, err_size, "%s", PQresultErrorMessage(res));
    PQclear(res);
    if (!ok) {
        PQclear(PQexec(pg, "ROLLBACK"));
        return false;
    }
    return exec_ok(pg, "COMMIT", err, err_size);
}

static bool migrate_locked(PGconn *pg, int *applied, char *err, size_t err_size)
{
    if (!exec_ok(pg,
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version integer PRIMARY KEY, name text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, err_size))
        return false;
    int have = current_version(pg, err, err_size);
    if (have < 0)
        return false;
    int newest =
        store_migrations_count == 0 ? 0 : store_migrations[store_migrations_count - 1].version;
    if (have > newest) {
        snprintf(err, err_size,
                 "the database is at migration %d but this binary knows only up to %d: it is "
                 "newer than this intentd (migrations are forward only)",
                 have, newest);
        return false;
    }
    for (size_t i = 0; i != store_migrations_count; ++i) {
        if (store_migrations[i].version <= have)
            continue;
        if (!apply_one(pg, &store_migrations[i], err, err_size))
            return false;
        rt_log_info("migrate", "applied %03d_%s", store_migrations[i].version,
                    store_migrations[i].name);
        ++*applied;
    }
    return true;
}

bool store_migrate(const char *database_url, int *applied, char *err, size_t err_size)
{
    *applied = 0;
    PGconn *pg = PQconnectdb(database_url);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, err_size, "cannot connect to the database: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return false;
    }
    PQclear(PQexec(pg, "SET client_min_messages = warning")); /* no NOTICE chatter on stderr */
    char lock_sql[96];
    snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK_KEY);
    bool ok = exec_ok(pg, lock_sql, err, err_size) && migrate_locked(pg, applied, err, err_size);
    /* closing the session releases the advisory lock in every case */
    PQfinish(pg);
    return ok;
}
