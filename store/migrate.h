/*
 * Schema migrations: numbered SQL files (store/migrations/NNN_name.sql), compiled into the
 * binary, applied in order at start.
 *
 * Runs before the workers start, on the main thread, with an ordinary blocking connection:
 * nothing else is running yet, and start-up should not proceed on a schema it cannot trust.
 * A session-level advisory lock makes concurrent starts (several processes over one database)
 * apply each migration exactly once: the second process waits, then finds them applied. Each
 * migration runs in its own transaction together with its row in schema_migrations. Forward
 * only: a database that has a migration this binary does not know is refused.
 */
#ifndef STORE_MIGRATE_H
#define STORE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct st_store_migration_t {
    int version;
    const char *name;
    const char *sql;
} store_migration_t;

/** The migrations compiled into this binary, ascending by version. */
extern const store_migration_t store_migrations[];
extern const size_t store_migrations_count;

/** Applies what is missing. Returns false with the reason in `err` (database down, a failing
 * migration, a database newer than the binary). `applied` receives how many were applied. */
bool store_migrate(const char *database_url, int *applied, char *err, size_t err_size);

#endif
