// What a Postgres snapshot means: thresholds, DDL, lock chains, exclusions, redaction.
#include "fakes/manual_time.hpp"
#include "sources/postgres/activity.hpp"
#include "sources/postgres/dsn.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace runbookd::sources::postgres {
namespace {

using namespace std::chrono_literals;

const wall_time now = fakes::at("2026-03-05T16:00:00Z");

session active(long long pid, double age, std::string query, std::string app = "web") {
    session s;
    s.pid = pid;
    s.user = "dark";
    s.application = std::move(app);
    s.state = "active";
    s.query_age = age;
    s.xact_age = age;
    s.state_age = age;
    s.query = std::move(query);
    return s;
}

activity_settings settings() {
    activity_settings s;
    s.instance = "dark-west";
    s.exclude_applications = {"pg_dump", "runbookd"};
    s.exclude_users = {"cloudsql*"};
    return s;
}

std::vector<const signal*> of_kind(const std::vector<signal>& all, std::string_view kind) {
    std::vector<const signal*> out;
    for (const auto& s : all) {
        if (s.kind == kind) {
            out.push_back(&s);
        }
    }
    return out;
}

TEST(PostgresActivity, LongQueriesCountFromTheirThresholdAndMigrationsSooner) {
    snapshot snap;
    snap.sessions = {
        active(10, 59, "SELECT * FROM events"),                                  // under a minute
        active(11, 61, "SELECT * FROM events WHERE id = 7"),                     // over
        active(12, 12, "  /* mig 42 */\n ALTER TABLE events ADD COLUMN x int"),  // DDL from 10 s
        active(13, 30, "CREATE INDEX CONCURRENTLY i ON events (value)"),         // online: a query
    };
    const auto all = activity_signals(snap, settings(), now);
    const auto got = of_kind(all, "db.long_query");
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(*got[0]->find("pid"), "11");
    EXPECT_EQ(*got[0]->find("is_ddl"), "false");
    EXPECT_EQ(got[0]->value, 61);
    EXPECT_EQ(got[0]->subject, "11");
    EXPECT_EQ(got[0]->source, "postgres");
    EXPECT_EQ(got[0]->at, now);
    EXPECT_EQ(*got[1]->find("pid"), "12");
    EXPECT_EQ(*got[1]->find("is_ddl"), "true");
    EXPECT_EQ(*got[1]->find("query"), "/* mig 42 */ ALTER TABLE events ADD COLUMN x int");
}

TEST(PostgresActivity, AnAccessExclusiveLockHolderIsAMigrationWhateverItsText) {
    snapshot snap;
    session s = active(20, 30, "SELECT run_migrations()", "migrations");
    s.exclusive = true;
    snap.sessions = {s};
    const auto all = activity_signals(snap, settings(), now);
    const auto got = of_kind(all, "db.long_query");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(*got[0]->find("is_ddl"), "true");
    EXPECT_EQ(*got[0]->find("application"), "migrations");
}

TEST(PostgresActivity, IndexBuildProgressIsShown) {
    snapshot snap;
    snap.sessions = {active(30, 120, "CREATE INDEX CONCURRENTLY i ON events (value)")};
    snap.index_builds = {{30, "CREATE INDEX CONCURRENTLY", "building index: scanning table", 200, 50}};
    const auto all = activity_signals(snap, settings(), now);
    const auto got = of_kind(all, "db.long_query");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(
        *got[0]->find("progress"), "CREATE INDEX CONCURRENTLY, building index: scanning table, 25% of blocks"
    );
}

TEST(PostgresActivity, IdleInTransactionCountsFromItsStateChange) {
    snapshot snap;
    session idle = active(40, 500, "UPDATE events SET value = 'x' WHERE id = 1");
    idle.state = "idle in transaction";
    idle.state_age = 90;
    session aborted = idle;
    aborted.pid = 41;
    aborted.state = "idle in transaction (aborted)";
    aborted.state_age = 30;  // under a minute
    snap.sessions = {idle, aborted};
    const auto all = activity_signals(snap, settings(), now);
    const auto got = of_kind(all, "db.idle_in_transaction");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(*got[0]->find("pid"), "40");
    EXPECT_EQ(got[0]->value, 90);
    EXPECT_EQ(*got[0]->find("query"), "UPDATE events SET value = '?' WHERE id = 1");
    EXPECT_TRUE(of_kind(all, "db.long_query").empty()) << "an idle session runs no query";
}

TEST(PostgresActivity, ALockWaitBlamesTheRootOfTheChain) {
    snapshot snap;
    session holder = active(50, 400, "SELECT * FROM events FOR UPDATE");
    holder.state = "idle in transaction";
    session migration = active(51, 30, "ALTER TABLE events ADD COLUMN y int", "migrations");
    migration.wait_event_type = "Lock";
    migration.blocked_by = {50};
    session update = active(52, 20, "UPDATE events SET value = $1 WHERE id = $2", "queueworker");
    update.wait_event_type = "Lock";
    update.blocked_by = {51, 50};  // queued behind the migration, which waits on the holder
    snap.sessions = {holder, migration, update};
    const auto all = activity_signals(snap, settings(), now);
    const auto waits = of_kind(all, "db.lock_wait");
    ASSERT_EQ(waits.size(), 2u);
    EXPECT_EQ(*waits[0]->find("pid"), "51");
    EXPECT_EQ(*waits[0]->find("blocked_by"), "50");
    EXPECT_EQ(*waits[0]->find("blocker_query"), "SELECT * FROM events FOR UPDATE");
    EXPECT_EQ(*waits[1]->find("pid"), "52");
    EXPECT_EQ(*waits[1]->find("blocked_by"), "50") << "cancelling the waiting migration frees nothing";
    EXPECT_EQ(waits[1]->value, 20);
    // The waiting migration is a migration in progress, too.
    const auto long_queries = of_kind(all, "db.long_query");
    ASSERT_EQ(long_queries.size(), 1u);
    EXPECT_EQ(*long_queries[0]->find("pid"), "51");
}

TEST(PostgresActivity, AQueryQueuedBehindAWaitingMigrationIsBlamedOnTheHolder) {
    // pg_blocking_pids of the UPDATE names only the ALTER queued ahead of it (a soft
    // block); the ALTER waits on the holder. Cancelling the holder frees both.
    snapshot snap;
    session holder = active(80, 400, "BEGIN");
    holder.state = "idle in transaction";
    session alter = active(81, 30, "ALTER TABLE t ADD COLUMN c int", "migrations");
    alter.wait_event_type = "Lock";
    alter.blocked_by = {80};
    session update = active(82, 20, "UPDATE t SET a = 1", "web");
    update.wait_event_type = "Lock";
    update.blocked_by = {81};
    update.waited = 12;  // pg_locks.waitstart: waiting since after its statement began
    snap.sessions = {holder, alter, update};
    const auto all = activity_signals(snap, settings(), now);
    const auto waits = of_kind(all, "db.lock_wait");
    ASSERT_EQ(waits.size(), 2u);
    EXPECT_EQ(*waits[1]->find("pid"), "82");
    EXPECT_EQ(*waits[1]->find("blocked_by"), "80");
    EXPECT_EQ(waits[1]->value, 12);
    // A cycle (a deadlock before the detector ends it) does not loop.
    snap.sessions[0].wait_event_type = "Lock";
    snap.sessions[0].blocked_by = {82};
    EXPECT_EQ(of_kind(activity_signals(snap, settings(), now), "db.lock_wait").size(), 3u);
}

TEST(PostgresActivity, ABlockerTheMonitorCannotSeeIsSaidSo) {
    snapshot snap;
    session w = active(60, 30, "UPDATE t SET a = 1");
    w.wait_event_type = "Lock";
    w.blocked_by = {0};  // a prepared transaction
    snap.sessions = {w};
    const auto all = activity_signals(snap, settings(), now);
    const auto waits = of_kind(all, "db.lock_wait");
    ASSERT_EQ(waits.size(), 1u);
    EXPECT_EQ(*waits[0]->find("blocked_by"), "0");
    EXPECT_EQ(*waits[0]->find("blocker_query"), "(not visible to the monitor)");
}

TEST(PostgresActivity, ExcludedApplicationsAndUsersAreNeverEvidence) {
    snapshot snap;
    snap.sessions = {
        active(70, 3600, "COPY public.events TO stdout", "pg_dump"),
        active(71, 3600, "SELECT 1", "psql"),
    };
    snap.sessions[1].user = "cloudsqladmin";
    EXPECT_TRUE(of_kind(activity_signals(snap, settings(), now), "db.long_query").empty());  // sizes only
}

TEST(PostgresActivity, ConnectionsCountAgainstTheSlotsLeftToClients) {
    snapshot snap;
    snap.client_connections = 95;
    snap.max_connections = 100;
    snap.reserved_connections = 3;
    const auto all = activity_signals(snap, settings(), now);
    const auto got = of_kind(all, "db.connections");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]->value, 95);
    EXPECT_EQ(*got[0]->find("max"), "97");
    EXPECT_EQ(*got[0]->find("instance"), "dark-west");
}

TEST(PostgresActivity, QueriesAreRedactedFlattenedAndCut) {
    activity_settings s = settings();
    s.query_max = 40;
    s.redact_patterns = compile_patterns({R"(\b[0-9a-f]{8}-[0-9a-f-]{27}\b)"});
    EXPECT_EQ(
        shown_query("SELECT *\n  FROM users\tWHERE email = 'ann@example.com' AND note = 'it''s'", s),
        "SELECT * FROM users WHERE email = '?' AN…"
    );
    EXPECT_EQ(
        shown_query("DELETE FROM canvases WHERE id = 0b9c3a52-1d4e-4c7a-9f0e-123456789abc", settings()),
        "DELETE FROM canvases WHERE id = 0b9c3a52-1d4e-4c7a-9f0e-123456789abc"
    );
    EXPECT_EQ(
        shown_query("DELETE FROM canvases WHERE id = 0b9c3a52-1d4e-4c7a-9f0e-123456789abc", s).substr(0, 32),
        "DELETE FROM canvases WHERE id = "
    );
    s.query_max = 300;
    EXPECT_EQ(
        shown_query("DELETE FROM canvases WHERE id = 0b9c3a52-1d4e-4c7a-9f0e-123456789abc", s),
        "DELETE FROM canvases WHERE id = [redacted]"
    );
    s.query_max = 3;
    EXPECT_EQ(shown_query("ééééé", s), "ééé…") << "cut between characters, not bytes";
    s.redact_literals = false;
    EXPECT_EQ(shown_query("'ab'", s), "'ab…");
    s.query_max = 10;
    EXPECT_EQ(shown_query("SELECT 'unterminated", settings()).substr(0, 10), "SELECT '?'");
}

TEST(PostgresActivity, EveryKindOfStringLiteralIsRedacted) {
    const activity_settings s = settings();
    EXPECT_EQ(
        shown_query(R"(SELECT E'it\'s secret' || 'x', $$dollar secret$$, $tag$a $$ b$tag$, $1)", s),
        "SELECT E'?' || '?', '?', '?', $1"
    );
    EXPECT_EQ(
        shown_query(R"(UPDATE t SET note = e'a\\' WHERE id = 1)", s), "UPDATE t SET note = e'?' WHERE id = 1"
    ) << "an escaped backslash does not escape the closing quote";
    EXPECT_EQ(shown_query("SELECT $$never closed secret", s), "SELECT '?'");
    EXPECT_EQ(shown_query("SELECT 'a''b', 'c'", s), "SELECT '?', '?'");
    activity_settings tiny = settings();
    tiny.query_max = 3;  // the pre-cut keeps 76 bytes, which would end inside the é
    const std::string spaced = "a" + std::string(74, ' ') + "é";
    EXPECT_EQ(shown_query(spaced, tiny), "a") << "never half a character";
}

TEST(PostgresActivity, StatementsAreClassifiedByWhatTheyDoToOthers) {
    for (const char* q :
         {"ALTER TABLE t ADD c int",
          "create index i on t (c)",
          "CREATE UNIQUE INDEX i ON t (c)",
          "DROP TABLE t",
          "DROP INDEX i",
          "REINDEX INDEX i",
          "REINDEX (VERBOSE) TABLE t",
          "REINDEX (CONCURRENTLY false) TABLE t",
          "TRUNCATE t",
          "CLUSTER t",
          "VACUUM FULL t",
          "vacuum (full) t",
          "VACUUM (VERBOSE, FULL true) t",
          "-- m\nREFRESH MATERIALIZED VIEW v",
          "/* a */ /* b */ alter table t",
          "CREATE TABLE concurrently (a int)"}) {
        EXPECT_EQ(classify_statement(q), statement_kind::blocking) << q;
    }
    for (const char* q :
         {"CREATE INDEX CONCURRENTLY i ON t (c)",
          "create unique index concurrently if not exists i on t (c)",
          "/* deploy 7 */ CREATE INDEX\n  CONCURRENTLY ON t (c)",
          "DROP INDEX CONCURRENTLY i",
          "REINDEX INDEX CONCURRENTLY i",
          "REINDEX (CONCURRENTLY) TABLE t",
          "REINDEX (VERBOSE, CONCURRENTLY true) TABLE t",
          "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
          "ANALYZE t",
          "analyse",
          "VACUUM t",
          "VACUUM ANALYZE t",
          "VACUUM (VERBOSE, ANALYZE) t",
          "VACUUM (FULL false) t",
          "VACUUM (FULL off, VERBOSE) t"}) {
        EXPECT_EQ(classify_statement(q), statement_kind::online) << q;
    }
    for (const char* q :
         {"SELECT 'ALTER TABLE'",
          "UPDATE alterations SET a = 1",
          "altered",
          "INSERT INTO t VALUES (1)",
          "\"alter\" table",
          "REFRESH",
          "",
          "/* unterminated"}) {
        EXPECT_EQ(classify_statement(q), statement_kind::other) << q;
    }
}

TEST(PostgresActivity, OnlineMaintenanceIsALongQueryUnlessSomeoneWaitsOnIt) {
    const activity_settings st = settings();
    // Past the migration threshold, under the long-query one, blocking no one: nothing.
    snapshot quiet;
    quiet.sessions = {active(60, 30, "CREATE INDEX CONCURRENTLY i ON events (value)", "deploy")};
    EXPECT_TRUE(of_kind(activity_signals(quiet, st, now), "db.long_query").empty());

    // Past the long-query threshold: a long query, not a migration.
    snapshot slow;
    slow.sessions = {active(61, 90, "VACUUM (VERBOSE) events", "deploy")};
    const auto slow_signals = activity_signals(slow, st, now);
    const auto long_ones = of_kind(slow_signals, "db.long_query");
    ASSERT_EQ(long_ones.size(), 1u);
    EXPECT_EQ(*long_ones[0]->find("is_ddl"), "false");
    EXPECT_EQ(*long_ones[0]->find("ddl"), "online");

    // A chain root (an ALTER TABLE queued behind the index build): a migration from 10 s.
    snapshot blocking = quiet;
    session alter = active(62, 8, "ALTER TABLE events ADD COLUMN z int", "deploy");
    alter.wait_event_type = "Lock";
    alter.blocked_by = {60};
    alter.waited = 8;
    blocking.sessions.push_back(alter);
    const auto all = activity_signals(blocking, st, now);
    const auto got = of_kind(all, "db.long_query");
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0]->subject, "60");
    EXPECT_EQ(*got[0]->find("is_ddl"), "true");
    EXPECT_EQ(*got[0]->find("ddl"), "online");
    ASSERT_EQ(of_kind(all, "db.lock_wait").size(), 1u);
    EXPECT_EQ(*of_kind(all, "db.lock_wait")[0]->find("blocked_by"), "60");

    // A blocking one is a migration from 10 s, blocking anyone or not.
    snapshot alone;
    alone.sessions = {active(63, 12, "ALTER TABLE events ADD COLUMN z int", "deploy")};
    const auto alone_signals = activity_signals(alone, st, now);
    ASSERT_EQ(of_kind(alone_signals, "db.long_query").size(), 1u);
    EXPECT_EQ(*of_kind(alone_signals, "db.long_query")[0]->find("ddl"), "blocking");
    EXPECT_EQ(*of_kind(alone_signals, "db.long_query")[0]->find("is_ddl"), "true");
}

activity_settings with_services() {
    activity_settings s = settings();
    s.services = {
        {"PBILL", {"billing-*"}, {"billing"}},
        {"PEDIT", {"editor-*", "canvas"}, {}},
        {"PSHARE", {}, {"dark"}},
    };
    return s;
}

std::string services_of(const std::vector<signal>& all, std::string_view kind, std::string_view subject) {
    for (const auto& s : all) {
        if (s.kind == kind && s.subject == subject) {
            return *s.find("services");
        }
    }
    return "(no signal)";
}

TEST(PostgresActivity, ASessionNamesItsServiceByApplicationElseByUser) {
    snapshot snap;
    session by_app = active(70, 90, "SELECT 1", "editor-web");
    session by_user = active(71, 90, "SELECT 1", "psql");
    by_user.user = "billing";
    session app_first = active(72, 90, "SELECT 1", "canvas");
    app_first.user = "billing";
    session shared_user = active(73, 90, "SELECT 1", "psql");  // user dark: PSHARE
    session nobody = active(74, 90, "SELECT 1", "psql");
    nobody.user = "admin";
    session idle = active(75, 90, "SELECT 1", "billing-worker");
    idle.state = "idle in transaction";
    snap.sessions = {by_app, by_user, app_first, shared_user, nobody, idle};
    const auto all = activity_signals(snap, with_services(), now);
    EXPECT_EQ(services_of(all, "db.long_query", "70"), "PEDIT");
    EXPECT_EQ(services_of(all, "db.long_query", "71"), "PBILL");
    EXPECT_EQ(services_of(all, "db.long_query", "72"), "PEDIT") << "the application is the finer mark";
    EXPECT_EQ(services_of(all, "db.long_query", "73"), "PSHARE");
    EXPECT_EQ(services_of(all, "db.long_query", "74"), "") << "unmapped: bears on every service";
    EXPECT_EQ(services_of(all, "db.idle_in_transaction", "75"), "PBILL");
    // Without services: configured, every label is empty.
    const auto plain = activity_signals(snap, settings(), now);
    EXPECT_EQ(services_of(plain, "db.long_query", "70"), "");
}

TEST(PostgresActivity, ALockChainNamesTheWaitersAndTheRootsServices) {
    snapshot snap;
    session migration = active(80, 30, "ALTER TABLE invoices ADD COLUMN due date", "billing-migrate");
    migration.exclusive = true;
    session editor = active(81, 12, "SELECT * FROM invoices", "editor-web");
    editor.wait_event_type = "Lock";
    editor.blocked_by = {80};
    editor.waited = 12;
    session queued = active(82, 11, "UPDATE invoices SET paid = true", "billing-worker");
    queued.wait_event_type = "Lock";
    queued.blocked_by = {81, 80};  // behind the waiting reader and the migration
    queued.waited = 11;
    // A second chain, on another table: the editor's own lock holder, idle in a transaction.
    session holder = active(83, 400, "SELECT * FROM canvases FOR UPDATE", "editor-api");
    holder.state = "idle in transaction";
    holder.state_age = 400;
    session waiter = active(84, 20, "DELETE FROM canvases WHERE id = 1", "editor-web");
    waiter.wait_event_type = "Lock";
    waiter.blocked_by = {83};
    waiter.waited = 20;
    snap.sessions = {migration, editor, queued, holder, waiter};
    const auto all = activity_signals(snap, with_services(), now);
    EXPECT_EQ(services_of(all, "db.lock_wait", "81"), "PBILL,PEDIT");
    EXPECT_EQ(services_of(all, "db.lock_wait", "82"), "PBILL");
    EXPECT_EQ(services_of(all, "db.long_query", "80"), "PBILL,PEDIT") << "it blocks the editor";
    EXPECT_EQ(services_of(all, "db.idle_in_transaction", "83"), "PEDIT") << "billing waits on no editor lock";
    EXPECT_EQ(services_of(all, "db.lock_wait", "84"), "PEDIT");

    // A waiter of no known service: who suffers is unknown, so the root bears on everyone.
    session stranger = active(85, 9, "SELECT count(*) FROM invoices", "psql");
    stranger.user = "admin";
    stranger.wait_event_type = "Lock";
    stranger.blocked_by = {80};
    stranger.waited = 9;
    snap.sessions.push_back(stranger);
    const auto more = activity_signals(snap, with_services(), now);
    EXPECT_EQ(services_of(more, "db.lock_wait", "85"), "");
    EXPECT_EQ(services_of(more, "db.long_query", "80"), "");
    EXPECT_EQ(services_of(more, "db.lock_wait", "81"), "PBILL,PEDIT") << "its own chain is still known";

    // A root of no known service: the waiter's alone.
    snapshot manual;
    session psql = active(90, 60, "LOCK TABLE canvases", "psql");
    psql.user = "admin";
    psql.state = "idle in transaction";
    psql.state_age = 60;
    session blocked = waiter;
    blocked.blocked_by = {90};
    manual.sessions = {psql, blocked};
    const auto manual_signals = activity_signals(manual, with_services(), now);
    EXPECT_EQ(services_of(manual_signals, "db.lock_wait", "84"), "PEDIT");
    EXPECT_EQ(services_of(manual_signals, "db.idle_in_transaction", "90"), "");
}

TEST(PostgresActivity, PidArraysParseTolerantly) {
    EXPECT_EQ(parse_pid_array("{12,7,12}"), (std::vector<long long>{12, 7}));
    EXPECT_EQ(parse_pid_array("{}"), std::vector<long long>{});
    EXPECT_EQ(parse_pid_array("{0}"), std::vector<long long>{0});
}

TEST(PostgresActivity, UnreachableNamesTheInstanceAndTheError) {
    const signal s = unreachable_signal(settings(), "cannot connect: connection refused", now);
    EXPECT_EQ(s.kind, "db.unreachable");
    EXPECT_EQ(*s.find("instance"), "dark-west");
    EXPECT_EQ(*s.find("error"), "cannot connect: connection refused");
}

TEST(PostgresDsn, TlsVerificationIsRequiredForARemoteHost) {
    const auto remote = parse_dsn("host=10.1.2.3 dbname=dark user=monitor sslmode=require");
    ASSERT_TRUE(remote);
    const auto verdict = check_dsn(*remote);
    ASSERT_FALSE(verdict);
    EXPECT_NE(verdict.error().detail.find("sslmode=require does not verify the server"), std::string::npos);

    for (const char* ok :
         {"host=127.0.0.1 port=5432 dbname=dark sslmode=disable",
          "host=/var/run/postgresql",
          "postgresql://monitor@db.internal/dark?sslmode=verify-full",
          "dbname=dark"}) {
        const auto d = parse_dsn(ok);
        ASSERT_TRUE(d) << ok;
        EXPECT_TRUE(check_dsn(*d)) << ok;
    }
    ASSERT_FALSE(check_dsn(*parse_dsn("host=127.0.0.1,db.internal sslmode=prefer")));
    ASSERT_FALSE(check_dsn(*parse_dsn("host=127.db.example.com sslmode=disable")))
        << "a name is not an address";
    ASSERT_TRUE(check_dsn(*parse_dsn("host=127.5.0.1,::1 sslmode=disable")));
    const auto service = check_dsn(*parse_dsn("service=prod dbname=dark"));
    ASSERT_FALSE(service);
    EXPECT_EQ(
        service.error().detail,
        "service and servicefile are not supported: name host, port and sslmode in the string"
    );
}

TEST(PostgresDsn, TheMonitorsStringAddsItsSessionSettings) {
    const auto d = parse_dsn("postgresql://monitor:s3cr%27et@db.internal:6432/dark");
    ASSERT_TRUE(d);
    const std::string s = monitor_dsn(*d, 5s, 1500ms);
    EXPECT_NE(s.find("sslmode='verify-full'"), std::string::npos) << s;
    EXPECT_NE(s.find("application_name='runbookd'"), std::string::npos);
    EXPECT_NE(s.find("connect_timeout='2'"), std::string::npos);
    EXPECT_NE(s.find("statement_timeout=5000"), std::string::npos);
    EXPECT_NE(s.find("default_transaction_read_only=on"), std::string::npos);
    EXPECT_NE(s.find("keepalives_idle='5'"), std::string::npos) << "a silent peer is found in seconds";
    EXPECT_NE(s.find("tcp_user_timeout='10000'"), std::string::npos);
    EXPECT_NE(s.find("password='s3cr\\'et'"), std::string::npos) << "quoted for libpq";
    // And libpq reads it back to the same password.
    const auto back = parse_dsn(s);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->at("password"), "s3cr'et");
    EXPECT_EQ(describe(*d), "dark on db.internal:6432");
}

TEST(PostgresDsn, AnUnreadableStringIsAnErrorWithoutItsText) {
    for (const char* text :
         {"host=x password=hunter2 nonsense", "host=x password hunter2", "postgresql://u:hunter2@[x"}) {
        const auto d = parse_dsn(text);
        ASSERT_FALSE(d) << text;
        EXPECT_EQ(d.error().detail.find("hunter2"), std::string::npos) << d.error().detail;
    }
}

}  // namespace
}  // namespace runbookd::sources::postgres
