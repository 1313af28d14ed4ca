-- Tamper evidence, part 1. Sealed format 2 (CONTRACT §4 as the README describes it): a config value's associated
-- data binds, besides its owner and config id, what decides its disclosure and its place:
-- its type, `write_only` and version. A value whose `write_only` was flipped in SQL, or
-- whose bytes were copied from an older version or another element, no longer opens.
--
-- The writer seals for the version the value becomes, so the write functions take that
-- version and answer `version_changed` when it is not the next one; the runtime config
-- returns each value's version so that it can be opened. Values in format 1 still open
-- until `coffer keys reseal` has sealed every one again: a job of kind `reseal` in the
-- key job table, resumable like destruction jobs, whose completion retires format 1.
--
-- Part 2: a tamper-evident audit trail (AuditChain in CofferCore). Each event carries a
-- code its writer made under the `audit` data key over who did what (`mac`), passed into
-- the functions below that write events. Events are never updated: one process at a time
-- later closes a range of writer transaction ids in which no transaction is still running
-- (`writer_xid` below the snapshot's xmin) with a checkpoint listing the ids and hashes of
-- the events in it, coded together with the previous checkpoint's code. The `coffer
-- migrate` that applies this gives the events that exist a code, once.
ALTER TABLE audit_events
    ADD COLUMN mac bytea, ADD COLUMN mac_version integer,
    ADD COLUMN writer_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX audit_events_writer_xid ON audit_events (writer_xid, id);
CREATE TABLE audit_checkpoints (
    seq          bigint      PRIMARY KEY,
    xid_from     xid8        NOT NULL,
    xid_to       xid8        NOT NULL,
    event_ids    bigint[]    NOT NULL,
    event_hashes bytea       NOT NULL,
    code         bytea       NOT NULL,
    code_version integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE key_destruction_jobs ADD COLUMN kind text NOT NULL DEFAULT 'destroy' CHECK (kind IN ('destroy', 'reseal'));
DROP INDEX key_destruction_jobs_one_running;
CREATE UNIQUE INDEX key_destruction_jobs_one_running ON key_destruction_jobs (kind, purpose, version) WHERE state = 'running';
CREATE UNIQUE INDEX key_destruction_jobs_one_reseal ON key_destruction_jobs (kind) WHERE state = 'running' AND kind = 'reseal';

DROP FUNCTION coffer_put_config_element_bounded(text, text, text, uuid, text, text, boolean, bytea, integer, text, text, text, text, text, integer);
DROP FUNCTION coffer_put_config_element(text, text, text, uuid, text, text, boolean, bytea, integer, text, text, text, text, text);
DROP FUNCTION coffer_runtime_config(text, text, text, text, text);

CREATE FUNCTION coffer_runtime_config(
    p_space text, p_stack text, p_actor text, p_actor_space text, p_request_id text,
    p_audit_mac bytea, p_audit_mac_version integer
) RETURNS TABLE (owner_uuid uuid, source text, config_id text, type text, write_only boolean, sealed_value bytea,
               version integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_stack config_owners%ROWTYPE;
    v_uuids uuid[];
    v_sources text[];
    v_automatic text;
BEGIN
    SELECT o.* INTO v_stack FROM config_owners o
    WHERE o.kind = 'stack' AND o.id = p_stack AND o.space IN (SELECT coffer_space_subtree(p_space));
    IF NOT FOUND THEN
        RETURN;
    END IF;

    WITH RECURSIVE up(id, depth) AS (
        SELECT v_stack.space, 0
        UNION ALL
        SELECT s.parent, up.depth + 1 FROM spaces s JOIN up ON s.id = up.id
        WHERE s.parent IS NOT NULL AND up.depth < 1000
    ),
    explicit AS (
        SELECT a.context_uuid AS uuid, o.id, row_number() OVER (ORDER BY a.priority, o.id) AS rank
        FROM stack_context_attachments a JOIN config_owners o ON o.uuid = a.context_uuid
        WHERE a.stack_uuid = v_stack.uuid
    ),
    automatic AS (
        SELECT o.uuid, o.id, 1000000000 + row_number() OVER (ORDER BY o.id) AS rank,
               -- The stack labels that attached it (or `*`), for the audit row.
               array_to_string(ARRAY(
                   SELECT substr(l, 12) FROM unnest(o.labels) l
                   WHERE l = 'autoattach:*' OR substr(l, 12) = ANY (v_stack.labels) ORDER BY 1
               ), '+') AS matched
        FROM config_owners o
        WHERE o.kind = 'context' AND o.space IN (SELECT id FROM up)
          AND o.labels && (ARRAY['autoattach:*'] || ARRAY(SELECT 'autoattach:' || l FROM unnest(v_stack.labels) l))
          AND o.uuid NOT IN (SELECT uuid FROM explicit)
    ),
    sources AS (
        SELECT v_stack.uuid AS uuid, 'stack'::text AS source, 0::bigint AS rank
        UNION ALL SELECT e.uuid, 'context:' || e.id, e.rank FROM explicit e
        UNION ALL SELECT a.uuid, 'context:' || a.id, a.rank FROM automatic a
    )
    SELECT array_agg(s.uuid ORDER BY s.rank), array_agg(s.source ORDER BY s.rank),
           (SELECT string_agg(a.id || ':' || a.matched, ',' ORDER BY a.id) FROM automatic a)
    INTO v_uuids, v_sources, v_automatic FROM sources s;

    INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
    VALUES (p_actor, p_actor_space, 'runtime_config.read', 'stack:' || p_stack || '/runtime-config', v_stack.space,
            p_request_id, 'success',
            'contexts=' || (cardinality(v_uuids) - 1) || coalesce(' auto=' || v_automatic, ''), p_audit_mac, p_audit_mac_version);

    RETURN QUERY SELECT v_stack.uuid, 'stack'::text, NULL::text, NULL::text, NULL::boolean, NULL::bytea, NULL::integer;
    RETURN QUERY
        SELECT DISTINCT ON (e.config_id) s.uuid, s.source, e.config_id, e.type, e.write_only, e.sealed_value, e.version
        FROM unnest(v_uuids, v_sources) WITH ORDINALITY AS s(uuid, source, rank)
        JOIN config_elements e ON e.owner_id = s.uuid
        ORDER BY e.config_id, s.rank;
END
$$;

-- Sets element `p_config_id` of the stack or context `p_kind`/`p_owner_id` (if it lies in
-- the caller's reach) to a value the caller sealed for owner `p_owner_uuid` under data key
-- version `p_dek_version`. Writers of one element are serialised (versions stay
-- contiguous); the data key version is checked to be active while holding a share lock on
-- its row, so a rotation cannot retire it before this commits. Answers one row whose
-- `status` says what happened:
--   not_found      no such owner in reach (nothing written or audited)
--   owner_changed  the owner's UUID is not `p_owner_uuid`: seal again for `owner_uuid`
--   stale_key      `p_dek_version` is no longer the active data key: reload keys, seal again
--   version_changed the value was sealed for version `p_version`, but the next version is
--                  another: `version` is the latest one; seal again for the one after it
--   unchanged      the element already holds exactly this (audited, no new version)
--   written        stored as version `version` (`created` when the element is new)
CREATE FUNCTION coffer_put_config_element(
    p_space text, p_kind text, p_owner_id text, p_owner_uuid uuid, p_config_id text,
    p_type text, p_write_only boolean, p_sealed_value bytea, p_dek_version integer, p_checksum text,
    p_description text, p_actor text, p_actor_space text, p_request_id text, p_version integer,
    p_audit_mac bytea, p_audit_mac_version integer
) RETURNS TABLE (status text, owner_uuid uuid, owner_space text, version integer, created_at timestamptz,
                 updated_at timestamptz, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_owner config_owners%ROWTYPE;
    v_current config_elements%ROWTYPE;
    v_version integer;
    v_created boolean;
    v_resource text := p_kind || ':' || p_owner_id || '/config/' || p_config_id;
BEGIN
    SELECT o.* INTO v_owner FROM config_owners o
    WHERE o.kind = p_kind AND o.id = p_owner_id AND o.space IN (SELECT coffer_space_subtree(p_space));
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found'::text, NULL::uuid, NULL::text, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::boolean;
        RETURN;
    END IF;
    IF p_owner_uuid IS DISTINCT FROM v_owner.uuid THEN
        RETURN QUERY SELECT 'owner_changed'::text, v_owner.uuid, v_owner.space, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::boolean;
        RETURN;
    END IF;

    -- The same key as ConfigElementRepository.lockElement (restore and delete take it too).
    PERFORM pg_advisory_xact_lock(hashtextextended(upper(v_owner.uuid::text) || '/' || p_config_id, 7102318));

    SELECT e.* INTO v_current FROM config_elements e WHERE e.owner_id = v_owner.uuid AND e.config_id = p_config_id;
    IF FOUND AND v_current.checksum = p_checksum AND v_current.type = p_type
       AND v_current.write_only = p_write_only AND v_current.description = p_description THEN
        INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
        VALUES (p_actor, p_actor_space, 'config.put', v_resource, v_owner.space, p_request_id, 'success',
                'version=' || v_current.version || ' unchanged', p_audit_mac, p_audit_mac_version);
        RETURN QUERY SELECT 'unchanged'::text, v_owner.uuid, v_owner.space, v_current.version, v_current.created_at,
                            v_current.updated_at, false;
        RETURN;
    END IF;

    PERFORM 1 FROM data_encryption_keys k
    WHERE k.purpose = 'database' AND k.version = p_dek_version AND k.state = 'active' FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'stale_key'::text, v_owner.uuid, v_owner.space, NULL::integer, NULL::timestamptz, NULL::timestamptz, NULL::boolean;
        RETURN;
    END IF;

    SELECT coalesce(max(h.version), 0) + 1 INTO v_version
    FROM config_element_versions h WHERE h.owner_id = v_owner.uuid AND h.config_id = p_config_id;
    -- The value is sealed in format 2, bound to the version it becomes.
    IF v_version IS DISTINCT FROM p_version THEN
        RETURN QUERY SELECT 'version_changed'::text, v_owner.uuid, v_owner.space, v_version - 1, NULL::timestamptz,
                            NULL::timestamptz, NULL::boolean;
        RETURN;
    END IF;

    INSERT INTO config_elements AS e
        (owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, version, author, created_at, updated_at)
    VALUES (v_owner.uuid, p_config_id, p_type, p_write_only, p_sealed_value, p_dek_version, p_checksum, p_description,
            v_version, p_actor, now(), now())
    ON CONFLICT (owner_id, config_id) DO UPDATE SET
        type = EXCLUDED.type, write_only = EXCLUDED.write_only, sealed_value = EXCLUDED.sealed_value,
        dek_version = EXCLUDED.dek_version, checksum = EXCLUDED.checksum, description = EXCLUDED.description,
        version = EXCLUDED.version, author = EXCLUDED.author, updated_at = EXCLUDED.updated_at
    RETURNING (e.xmax = 0) INTO v_created;

    INSERT INTO config_element_versions
        (owner_id, config_id, version, type, write_only, sealed_value, dek_version, checksum, description, author, created_at)
    VALUES (v_owner.uuid, p_config_id, v_version, p_type, p_write_only, p_sealed_value, p_dek_version, p_checksum,
            p_description, p_actor, now());

    INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
    VALUES (p_actor, p_actor_space, 'config.put', v_resource, v_owner.space, p_request_id, 'success', 'version=' || v_version,
            p_audit_mac, p_audit_mac_version);

    RETURN QUERY SELECT 'written'::text, v_owner.uuid, v_owner.space, v_version, coalesce(v_current.created_at, now()),
                        now(), v_created;
END
$$;

-- As in 0007_element_bound.sql, with the version.
CREATE FUNCTION coffer_put_config_element_bounded(
    p_space text, p_kind text, p_owner_id text, p_owner_uuid uuid, p_config_id text,
    p_type text, p_write_only boolean, p_sealed_value bytea, p_dek_version integer, p_checksum text,
    p_description text, p_actor text, p_actor_space text, p_request_id text, p_max_elements integer,
    p_version integer, p_audit_mac bytea, p_audit_mac_version integer
) RETURNS TABLE (status text, owner_uuid uuid, owner_space text, version integer, created_at timestamptz,
                 updated_at timestamptz, created boolean)
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM config_elements e WHERE e.owner_id = p_owner_uuid AND e.config_id = p_config_id) THEN
        -- The same key as ConfigElementRepository.lockElementCount.
        PERFORM pg_advisory_xact_lock(hashtextextended(upper(p_owner_uuid::text) || '/elements', 7102318));
        IF (SELECT count(*) FROM config_elements e WHERE e.owner_id = p_owner_uuid) >= p_max_elements
           AND NOT EXISTS (SELECT 1 FROM config_elements e WHERE e.owner_id = p_owner_uuid AND e.config_id = p_config_id)
           AND EXISTS (SELECT 1 FROM config_owners o WHERE o.uuid = p_owner_uuid AND o.kind = p_kind AND o.id = p_owner_id
                       AND o.space IN (SELECT coffer_space_subtree(p_space))) THEN
            RETURN QUERY SELECT 'too_many_elements'::text, p_owner_uuid, NULL::text, NULL::integer, NULL::timestamptz,
                                NULL::timestamptz, NULL::boolean;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM coffer_put_config_element(
        p_space, p_kind, p_owner_id, p_owner_uuid, p_config_id, p_type, p_write_only, p_sealed_value, p_dek_version,
        p_checksum, p_description, p_actor, p_actor_space, p_request_id, p_version, p_audit_mac,
        p_audit_mac_version);
END
$$;
