-- Authenticated reach: the rows that decide which stacks and contexts a key reaches and
-- which contexts a stack's runtime config takes values from carry an authentication code
-- under the `integrity` data key, as API keys and KMS keys do (0008): a space over its id
-- and parent (`root` is implicit and carries none), a stack or context over its uuid,
-- kind, id, space and labels, an explicit attachment over its stack, context and priority. `coffer migrate` gives the rows that exist then a code, once; a
-- row without a valid code found later is treated as absent (SpaceTree and RowIntegrity
-- in CofferCore).
ALTER TABLE spaces ADD COLUMN mac bytea, ADD COLUMN mac_version integer;
ALTER TABLE stack_context_attachments ADD COLUMN mac bytea, ADD COLUMN mac_version integer;
ALTER TABLE config_owners ADD COLUMN mac bytea, ADD COLUMN mac_version integer;

DROP FUNCTION IF EXISTS coffer_runtime_config(text, text, text, text, text, bytea, integer);

-- As in 0009, with what the caller needs to check the rows the resolution relied on, each
-- with a NULL config id: first the stack (source `stack`) with its space, labels and code
-- and the chain of spaces above it that auto-attachment walked (`chain`, nearest first);
-- then each context that gives values (source `context:<id>`) with its space, labels and
-- code; then each explicit attachment (source `attachment`, the context's UUID) with its
-- priority and code. Contexts in `p_excluded` (whose row or attachment did not verify)
-- are resolved as if neither attached nor labelled.
CREATE OR REPLACE FUNCTION coffer_runtime_config(
    p_space text, p_stack text, p_actor text, p_actor_space text, p_request_id text,
    p_audit_mac bytea, p_audit_mac_version integer, p_excluded uuid[]
) RETURNS TABLE (owner_uuid uuid, source text, config_id text, type text, write_only boolean, sealed_value bytea,
               version integer, space text, chain text[], labels text[], priority integer, mac bytea, mac_version integer)
LANGUAGE plpgsql AS $$
DECLARE
    v_stack config_owners%ROWTYPE;
    -- The contexts that give values, in rank order, and the explicit attachments, as rows.
    v_contexts config_owners[];
    v_attachments stack_context_attachments[];
    v_automatic text;
    v_chain text[];
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
        SELECT a AS attachment, o AS owner, o.uuid, row_number() OVER (ORDER BY a.priority, o.id) AS rank
        FROM stack_context_attachments a JOIN config_owners o ON o.uuid = a.context_uuid
        WHERE a.stack_uuid = v_stack.uuid AND a.context_uuid <> ALL (p_excluded)
    ),
    automatic AS (
        SELECT o AS owner, o.id, 1000000000 + row_number() OVER (ORDER BY o.id) AS rank,
               -- The stack labels that attached it (or `*`), for the audit row.
               array_to_string(ARRAY(
                   SELECT substr(l, 12) FROM unnest(o.labels) l
                   WHERE l = 'autoattach:*' OR substr(l, 12) = ANY (v_stack.labels) ORDER BY 1
               ), '+') AS matched
        FROM config_owners o
        WHERE o.kind = 'context' AND o.space IN (SELECT id FROM up)
          AND o.labels && (ARRAY['autoattach:*'] || ARRAY(SELECT 'autoattach:' || l FROM unnest(v_stack.labels) l))
          AND o.uuid NOT IN (SELECT uuid FROM explicit) AND o.uuid <> ALL (p_excluded)
    ),
    sources AS (
        SELECT e.owner, e.rank FROM explicit e
        UNION ALL SELECT a.owner, a.rank FROM automatic a
    )
    SELECT coalesce((SELECT array_agg(s.owner ORDER BY s.rank) FROM sources s), '{}'),
           coalesce((SELECT array_agg(e.attachment) FROM explicit e), '{}'),
           (SELECT array_agg(id ORDER BY depth) FROM up),
           (SELECT string_agg(a.id || ':' || a.matched, ',' ORDER BY a.id) FROM automatic a)
    INTO v_contexts, v_attachments, v_chain, v_automatic;

    INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
    VALUES (p_actor, p_actor_space, 'runtime_config.read', 'stack:' || p_stack || '/runtime-config', v_stack.space,
            p_request_id, 'success',
            'contexts=' || cardinality(v_contexts) || coalesce(' auto=' || v_automatic, ''), p_audit_mac, p_audit_mac_version);

    RETURN QUERY
        SELECT v_stack.uuid, 'stack'::text, NULL::text, NULL::text, NULL::boolean, NULL::bytea, NULL::integer,
               v_stack.space, v_chain, v_stack.labels, NULL::integer, v_stack.mac, v_stack.mac_version
        UNION ALL
        SELECT c.uuid, 'context:' || c.id, NULL::text, NULL::text, NULL::boolean, NULL::bytea, NULL::integer,
               c.space, NULL::text[], c.labels, NULL::integer, c.mac, c.mac_version
        FROM unnest(v_contexts) AS c
        UNION ALL
        SELECT a.context_uuid, 'attachment'::text, NULL::text, NULL::text, NULL::boolean, NULL::bytea, NULL::integer,
               NULL::text, NULL::text[], NULL::text[], a.priority, a.mac, a.mac_version
        FROM unnest(v_attachments) AS a
        UNION ALL
        (SELECT DISTINCT ON (e.config_id) s.uuid, s.source, e.config_id, e.type, e.write_only, e.sealed_value, e.version,
                NULL::text, NULL::text[], NULL::text[], NULL::integer, NULL::bytea, NULL::integer
         FROM (SELECT v_stack.uuid AS uuid, 'stack'::text AS source, 0::bigint AS rank
               UNION ALL
               SELECT c.uuid, 'context:' || c.id, c.ordinality FROM unnest(v_contexts) WITH ORDINALITY AS c) s
         JOIN config_elements e ON e.owner_id = s.uuid
         ORDER BY e.config_id, s.rank);
END
$$;
