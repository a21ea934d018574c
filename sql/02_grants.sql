-- childindex table privileges. Run as childindex_owner (or a superuser) after every
-- `childindex db upgrade`; it is idempotent:
--     psql -v ON_ERROR_STOP=1 -d childindex -U childindex_owner -f sql/02_grants.sql
-- Start from nothing, then grant each role exactly what its stage needs.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, childindex_loader, childindex_retention, childindex_reader;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, childindex_loader, childindex_retention, childindex_reader;

-- Loader (intake, linkage, review decisions, summaries): the index and its bookkeeping.
-- It never deletes the deletion log, and it cannot change the schema (it owns nothing).
GRANT SELECT, INSERT, UPDATE, DELETE
    ON child, source_record, involvement, child_id_history, review_item, link_decision, file_ledger, night_metric
    TO childindex_loader;
-- The registry's organisations and areas, as publish last copied them (no child's data).
GRANT SELECT, INSERT, UPDATE, DELETE ON organisation, area TO childindex_loader;
GRANT SELECT, INSERT ON key_epoch TO childindex_loader;
-- Notices (the loader writes them after linkage): keys, nights and counts only.
GRANT SELECT, INSERT, UPDATE, DELETE ON notice_pending, notice_told, notice_ledger TO childindex_loader;
GRANT SELECT ON deletion_log TO childindex_loader;

-- Retention: reads what its rules test, deletes, marks expired staging in the ledger, and
-- logs its certificate. It never inserts or changes a child's data.
GRANT SELECT, DELETE
    ON child, source_record, involvement, child_id_history, review_item, link_decision, file_ledger, night_metric,
       deletion_log, notice_pending, notice_told, notice_ledger
    TO childindex_retention;
GRANT UPDATE (status) ON file_ledger TO childindex_retention;
GRANT INSERT ON deletion_log TO childindex_retention;

-- Reader: the views only. The source-record mapping, keys, review queue and bookkeeping
-- are out of its sight.
GRANT SELECT ON reader_child, reader_involvement, reader_child_id_history TO childindex_reader;

-- Identity columns' sequences, for the roles that insert.
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO childindex_loader;
GRANT USAGE ON SEQUENCE deletion_log_id_seq TO childindex_retention;

-- PostgreSQL 17 and later: retention may also VACUUM FULL the tables it deletes from, so
-- deleted rows leave no bytes in their files (docs/retention.md). Before 17 only the owner
-- can; retention then logs that the tables still need it.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON child, source_record, involvement, child_id_history, review_item, link_decision, '
                'file_ledger, night_metric, deletion_log, notice_pending, notice_told, notice_ledger '
                'TO childindex_retention';
    END IF;
END
$$;
