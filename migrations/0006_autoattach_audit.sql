-- Auto-attachment is a trust decision (a context labelled `autoattach:L` reaches every
-- stack labelled `L` below its space, whoever set the label), so the audit row of a runtime
-- config read now names each automatically attached context and the stack labels that
-- attached it: `contexts=3 auto=shared-db:team-a,everything:*`. Otherwise the function is
-- the one of 0005_data_path.sql.
CREATE OR REPLACE FUNCTION coffer_runtime_config(
    p_space text, p_stack text, p_actor text, p_actor_space text, p_request_id text
) RETURNS TABLE (owner_uuid uuid, source text, config_id text, type text, write_only boolean, sealed_value bytea)
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

    INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail)
    VALUES (p_actor, p_actor_space, 'runtime_config.read', 'stack:' || p_stack || '/runtime-config', v_stack.space,
            p_request_id, 'success',
            'contexts=' || (cardinality(v_uuids) - 1) || coalesce(' auto=' || v_automatic, ''));

    RETURN QUERY SELECT v_stack.uuid, 'stack'::text, NULL::text, NULL::text, NULL::boolean, NULL::bytea;
    RETURN QUERY
        SELECT DISTINCT ON (e.config_id) s.uuid, s.source, e.config_id, e.type, e.write_only, e.sealed_value
        FROM unnest(v_uuids, v_sources) WITH ORDINALITY AS s(uuid, source, rank)
        JOIN config_elements e ON e.owner_id = s.uuid
        ORDER BY e.config_id, s.rank;
END
$$;
