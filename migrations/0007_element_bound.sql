-- A stack or context holds at most a bounded number of config elements
-- (COFFER_MAX_ELEMENTS_PER_OWNER), so that no list, runtime config or destruction job
-- grows without end. The bound is kept by the write itself: a write that would create
-- an element past it answers `too_many_elements` and writes nothing. Creations of new
-- elements of one owner take a lock of their own (changes of existing elements do not),
-- so two creations cannot both slip under the bound; restores take the same lock first.
CREATE FUNCTION coffer_put_config_element_bounded(
    p_space text, p_kind text, p_owner_id text, p_owner_uuid uuid, p_config_id text,
    p_type text, p_write_only boolean, p_sealed_value bytea, p_dek_version integer, p_checksum text,
    p_description text, p_actor text, p_actor_space text, p_request_id text, p_max_elements integer
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
        p_checksum, p_description, p_actor, p_actor_space, p_request_id);
END
$$;
