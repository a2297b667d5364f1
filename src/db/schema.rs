//! Hand-kept diesel schema, shared by the SQLite and PostgreSQL migrations.

diesel::table! {
    sessions (id) {
        id -> Text,
        kind -> Text,
        subject -> Text,
        portal_link_id -> Nullable<Text>,
        created_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    brands (scope) {
        scope -> Text,
        product_name -> Nullable<Text>,
        accent -> Nullable<Text>,
        support -> Nullable<Text>,
        logo -> Nullable<Binary>,
        logo_type -> Nullable<Text>,
        logo_sha256 -> Nullable<Text>,
    }
}

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    owners (id) {
        id -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    owner_setup_links (id) {
        id -> Text,
        sha256 -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        scim_enabled -> Bool,
        created_at -> Timestamp,
        brake_min_users -> Integer,
        brake_min_percent -> Integer,
        brake_window_minutes -> Integer,
        brake_settle_seconds -> Integer,
    }
}

diesel::table! {
    portal_links (id) {
        id -> Text,
        org_id -> Text,
        sha256 -> Binary,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        embed_origin -> Nullable<Text>,
    }
}

diesel::table! {
    directory_arrivals (directory_id) {
        directory_id -> Text,
        first_user_at -> Nullable<Timestamp>,
        first_group_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    directory_user_counts (directory_id) {
        directory_id -> Text,
        event_seq -> BigInt,
        live_users -> BigInt,
    }
}

diesel::table! {
    directories (id) {
        id -> Text,
        org_id -> Text,
        provider -> Text,
        name -> Text,
        status -> Text,
        created_at -> Timestamp,
        first_request_at -> Nullable<Timestamp>,
        last_request_at -> Nullable<Timestamp>,
        event_seq -> BigInt,
        brake_min_users -> Nullable<Integer>,
        brake_min_percent -> Nullable<Integer>,
        brake_window_minutes -> Nullable<Integer>,
        brake_settle_seconds -> Nullable<Integer>,
        brake_state -> Text,
        brake_changed_at -> Nullable<Timestamp>,
        brake_reason -> Nullable<Text>,
    }
}

diesel::table! {
    deprovisions (id) {
        id -> BigInt,
        directory_id -> Text,
        user_id -> Text,
        kind -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    held_users (directory_id, user_id) {
        directory_id -> Text,
        user_id -> Text,
        kind -> Text,
        held_at -> Timestamp,
        release_at -> Nullable<Timestamp>,
        app_view -> Text,
        app_groups -> Text,
    }
}

diesel::table! {
    held_events (id) {
        id -> BigInt,
        directory_id -> Text,
        user_id -> Text,
        event_type -> Text,
        data -> Text,
        held_at -> Timestamp,
    }
}

diesel::table! {
    directory_tokens (id) {
        id -> Text,
        directory_id -> Text,
        sha256 -> Binary,
        suffix -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    scim_users (id) {
        id -> Text,
        directory_id -> Text,
        user_name -> Text,
        user_name_norm -> Text,
        external_id -> Nullable<Text>,
        active -> Bool,
        display_name -> Nullable<Text>,
        display_name_norm -> Nullable<Text>,
        full_name -> Nullable<Text>,
        full_name_norm -> Nullable<Text>,
        primary_email -> Nullable<Text>,
        resource -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    user_emails (user_id, position) {
        user_id -> Text,
        position -> Integer,
        directory_id -> Text,
        value_norm -> Text,
        type_norm -> Nullable<Text>,
        is_primary -> Bool,
    }
}

diesel::table! {
    scim_groups (id) {
        id -> Text,
        directory_id -> Text,
        display_name -> Text,
        display_name_norm -> Text,
        external_id -> Nullable<Text>,
        resource -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    scim_requests (id) {
        id -> BigInt,
        directory_id -> Text,
        at -> Timestamp,
        method -> Text,
        path -> Text,
        status -> Integer,
        duration_us -> BigInt,
        request_body -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        error_kind -> Nullable<Text>,
        resource_type -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        change_summary -> Nullable<Text>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    login_attempts (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        id -> Text,
        org_id -> Text,
        directory_id -> Text,
        directory_seq -> BigInt,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        org_id -> Nullable<Text>,
        event_types -> Text,
        secret -> Text,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        endpoint_id -> Text,
        event_seq -> BigInt,
        directory_id -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> BigInt,
        delivery_id -> BigInt,
        endpoint_id -> Text,
        attempt -> Integer,
        at -> Timestamp,
        status_code -> Nullable<Integer>,
        latency_ms -> BigInt,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        sha256 -> Binary,
        suffix -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        org_id -> Nullable<Text>,
    }
}
diesel::table! {
    roles (id) {
        id -> Text,
        org_id -> Text,
        slug -> Text,
        name -> Text,
        description -> Nullable<Text>,
        is_default -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    role_mappings (group_id, role_id) {
        group_id -> Text,
        role_id -> Text,
        directory_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_roles (user_id) {
        user_id -> Text,
        directory_id -> Text,
        roles -> Text,
    }
}

diesel::table! {
    role_refreshes (id) {
        id -> Text,
        directory_id -> Text,
        default_changed -> Bool,
        default_before -> Nullable<Text>,
        claimed_until -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    custom_attributes (org_id, name) {
        org_id -> Text,
        name -> Text,
        source -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    attribute_mappings (directory_id, name) {
        directory_id -> Text,
        name -> Text,
        source -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    directory_resyncs (id) {
        id -> Text,
        directory_id -> Text,
        state -> Text,
        started_at -> Timestamp,
        finish_by -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        confirmed -> BigInt,
        stale_users -> Nullable<Text>,
        stale_groups -> Nullable<Text>,
        action -> Nullable<Text>,
        applied_at -> Nullable<Timestamp>,
        claimed_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    resync_confirmations (resync_id, resource_id) {
        resync_id -> Text,
        resource_id -> Text,
    }
}

diesel::table! {
    directory_alerts (id) {
        id -> Text,
        directory_id -> Text,
        kind -> Text,
        detail -> Text,
        raised_at -> Timestamp,
        cleared_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(portal_links -> organizations (org_id));
diesel::joinable!(roles -> organizations (org_id));
diesel::joinable!(custom_attributes -> organizations (org_id));
diesel::joinable!(attribute_mappings -> directories (directory_id));
diesel::joinable!(role_mappings -> roles (role_id));
diesel::joinable!(role_mappings -> scim_groups (group_id));
diesel::joinable!(directories -> organizations (org_id));
diesel::joinable!(held_users -> directories (directory_id));
diesel::joinable!(directory_resyncs -> directories (directory_id));
diesel::joinable!(directory_tokens -> directories (directory_id));
diesel::joinable!(directory_arrivals -> directories (directory_id));
diesel::joinable!(directory_user_counts -> directories (directory_id));
diesel::joinable!(directory_alerts -> directories (directory_id));
diesel::joinable!(scim_users -> directories (directory_id));
diesel::joinable!(scim_groups -> directories (directory_id));
diesel::joinable!(user_emails -> scim_users (user_id));
diesel::joinable!(group_members -> scim_groups (group_id));
diesel::joinable!(group_members -> scim_users (user_id));
diesel::joinable!(scim_requests -> directories (directory_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_deliveries -> events (event_seq));

diesel::allow_tables_to_appear_in_same_query!(
    deprovisions,
    held_users,
    held_events,
    settings,
    owners,
    owner_setup_links,
    organizations,
    portal_links,
    directories,
    directory_arrivals,
    directory_user_counts,
    directory_tokens,
    scim_users,
    user_emails,
    scim_groups,
    group_members,
    scim_requests,
    login_attempts,
    events,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    api_keys,
    sessions,
    roles,
    role_mappings,
    user_roles,
    role_refreshes,
    custom_attributes,
    attribute_mappings,
    directory_alerts,
    brands,
    directory_resyncs,
    resync_confirmations,
);
