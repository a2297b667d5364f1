//! The directory providers Roster knows, with each one's setup guide: the Admin Portal offers
//! them, the owner console and the CLI name them by slug.
//!
//! Steps follow each provider's admin console (the admin's clicks, as the vendor documents
//! them); warnings cover the settings that break setups and what each provider sends
//! (docs/provider-pitfalls.md). Steps and warnings are trusted static HTML.

/// One identity provider the IT admin can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    /// Stable identifier stored in the database and used by the CLI: one of
    /// "pingidentity", "okta", "entra", "onelogin", "jumpcloud", "rippling", "generic".
    pub slug: &'static str,
    /// Display name: "PingIdentity", "Okta", "Microsoft Entra ID", "OneLogin", "JumpCloud", "Rippling", "Generic SCIM 2.0".
    pub name: &'static str,
    /// One-line description for the picker card (e.g. "PingOne SCIM Outbound provisioning").
    pub blurb: &'static str,
    /// Numbered setup steps. Trusted static HTML (rendered with |safe): use <kbd>…</kbd> for UI labels/menu items,
    /// <strong> for emphasis, <code> for literal values. Refer to the two values the portal shows as
    /// "the <strong>Endpoint URL</strong>" and "the <strong>Bearer token</strong>".
    pub steps: &'static [&'static str],
    /// Traps that break setups for this provider (same HTML rules), shown as warnings.
    pub warnings: &'static [&'static str],
}

const PINGIDENTITY: Provider = Provider {
    slug: "pingidentity",
    name: "PingIdentity",
    blurb: "PingOne SCIM Outbound provisioning",
    steps: &[
        "In the PingOne admin console, open your environment and go to <kbd>Integrations</kbd> → <kbd>Provisioning</kbd> (older consoles: <kbd>Connections</kbd> → <kbd>Provisioning</kbd>).",
        "Click <kbd>+</kbd> → <kbd>New connection</kbd>.",
        "On the <kbd>Identity Store</kbd> row click <kbd>Select</kbd>, pick <kbd>SCIM Outbound</kbd>, click <kbd>Select</kbd> and then <kbd>Next</kbd>.",
        "Enter a <kbd>Name</kbd> (and optional <kbd>Description</kbd>) → <kbd>Next</kbd>. In <kbd>Configure authentication</kbd>: paste the <strong>Endpoint URL</strong> into <kbd>SCIM Base URL</kbd>; set <kbd>Users Resource</kbd> to <code>/Users</code> and <kbd>Groups Resource</kbd> to <code>/Groups</code>; set <kbd>SCIM Version</kbd> to <strong>2.0</strong>; set <kbd>Authentication Method</kbd> to <kbd>OAuth 2 Bearer Token</kbd> and paste the <strong>Bearer token</strong> into <kbd>OAuth Access Token</kbd>; set <kbd>Auth Type Header</kbd> to <kbd>Bearer</kbd>.",
        "Click <kbd>Test Connection</kbd> and expect <kbd>Connection Successful</kbd>, then <kbd>Next</kbd>.",
        "In <kbd>Configure preferences</kbd> keep <kbd>Unique User Identifier</kbd> = <code>userName</code> and the default <kbd>User Filter</kbd>, leave the create/update/disable checkboxes on, set <kbd>Remove Action</kbd> to <kbd>Disable</kbd> (recommended), and click <kbd>Save</kbd>. Then turn the new connection <strong>on</strong> with its toggle.",
        "Create a rule: <kbd>+</kbd> → <kbd>New rule</kbd> → name it → <kbd>Create rule</kbd>. On the <kbd>Configuration</kbd> tab, under <kbd>Target</kbd> add this SCIM connection (PingOne becomes the source automatically) → <kbd>Save</kbd>. Under <kbd>User Filter</kbd> (pencil) choose who is in scope, e.g. <kbd>Group Names</kbd> – <kbd>Contains</kbd> – your group, or a population → <kbd>Save</kbd>. Under <kbd>Group Provisioning</kbd> click <kbd>Add Groups</kbd> (newest console: <kbd>Directory</kbd> tab → pencil next to <kbd>Groups</kbd>), tick the PingOne groups to send → <kbd>Save</kbd>.",
        "Turn the <strong>rule</strong> on with its toggle. This starts the initial full sync: users and groups then appear here within minutes, and later changes flow near-real-time. Use <kbd>Full Resync</kbd> on the rule to push everything again.",
    ],
    warnings: &[
        "<kbd>SCIM Version</kbd> must be <strong>2.0</strong>. <code>1.1</code> is also offered; with it PingOne speaks SCIM 1.1 and setup fails.",
        "<kbd>Auth Type Header</kbd> must be <kbd>Bearer</kbd>. Ping's API default is <code>Basic</code>, which makes every request fail with 401.",
        "Users are matched by <code>userName</code> with the filter <code>username Eq \"…\"</code> (lower-case attribute, capital <code>Eq</code>). This service handles this form: <strong>do not</strong> rewrite the <kbd>User Filter</kbd>. <kbd>Unique User Identifier</kbd> cannot be changed after the connection exists.",
        "PingOne cannot clear an attribute once it is set: emptying a field in PingOne does not remove it here.",
        "<kbd>Remove Action</kbd>: <kbd>Disable</kbd> deactivates the user (<code>active: false</code>); <kbd>Delete</kbd> permanently deletes the user here when they leave the rule's scope. Prefer <kbd>Disable</kbd>.",
        "Nothing syncs unless both the connection and the rule are toggled on, the rule's <kbd>User Filter</kbd> matches your users, and the groups are added under <kbd>Group Provisioning</kbd>. Only internal PingOne groups can be provisioned, and a group member who fails the <kbd>User Filter</kbd> is silently not sent.",
        "If a group with the same name already exists here, PingOne asks whether to <kbd>Merge Group Memberships</kbd> or <kbd>Overwrite Group Memberships</kbd>; overwrite replaces its member list.",
    ],
};

const OKTA: Provider = Provider {
    slug: "okta",
    name: "Okta",
    blurb: "Okta custom app (SAML or SWA) with SCIM provisioning",
    steps: &[
        "In the Okta Admin Console go to <kbd>Applications</kbd> → <kbd>Applications</kbd> → <kbd>Create App Integration</kbd>, choose <kbd>SAML 2.0</kbd> (or <kbd>SWA</kbd>) → <kbd>Next</kbd>, enter an <kbd>App name</kbd>, fill the SAML settings (placeholders are fine if this app is only for provisioning) → <kbd>Finish</kbd>.",
        "On the app's <kbd>General</kbd> tab, under <kbd>App Settings</kbd> click <kbd>Edit</kbd>, set <kbd>Provisioning</kbd> to <kbd>SCIM</kbd> → <kbd>Save</kbd>. A <kbd>Provisioning</kbd> tab appears.",
        "<kbd>Provisioning</kbd> tab → <kbd>Settings</kbd> → <kbd>Integration</kbd> → <kbd>Edit</kbd>: paste the <strong>Endpoint URL</strong> into <kbd>SCIM connector base URL</kbd>; set <kbd>Unique identifier field for users</kbd> to <code>userName</code>; under <kbd>Supported provisioning actions</kbd> tick <kbd>Push New Users</kbd>, <kbd>Push Profile Updates</kbd> and <kbd>Push Groups</kbd>; set <kbd>Authentication Mode</kbd> to <kbd>HTTP Header</kbd> and paste the <strong>Bearer token</strong> into <kbd>Authorization</kbd> (Okta shows the <code>Bearer</code> prefix itself; paste only the token).",
        "Click <kbd>Test Connector Configuration</kbd>, expect a green result, then <kbd>Save</kbd>.",
        "<kbd>Provisioning</kbd> → <kbd>Settings</kbd> → <kbd>To App</kbd> → <kbd>Edit</kbd>: enable <kbd>Create Users</kbd>, <kbd>Update User Attributes</kbd> and <kbd>Deactivate Users</kbd> (all three are off by default); leave <kbd>Sync Password</kbd> off → <kbd>Save</kbd>.",
        "<kbd>Assignments</kbd> tab → <kbd>Assign</kbd> → <kbd>Assign to People</kbd> or <kbd>Assign to Groups</kbd> → <kbd>Assign</kbd> → <kbd>Save and Go Back</kbd> → <kbd>Done</kbd>. Assigned users appear here within seconds.",
        "<kbd>Push Groups</kbd> tab → <kbd>+ Push Groups</kbd> → <kbd>Find groups by name</kbd>, pick the group, keep <kbd>Push group memberships immediately</kbd> checked → <kbd>Save</kbd>. Use <kbd>Push Now</kbd> on a pushed group to re-send its members.",
    ],
    warnings: &[
        "Okta adds SCIM only to <strong>SAML 2.0</strong> or <strong>SWA</strong> apps created with the App Integration Wizard, not to OIDC apps. If your SSO app uses OIDC, create a separate SAML or SWA app just for provisioning. If <kbd>Provisioning</kbd> offers no <kbd>SCIM</kbd> option, your Okta org lacks the provisioning feature.",
        "Okta rejects base URLs that contain an underscore. The Endpoint URLs shown here never do; paste it exactly as shown, with no trailing slash and no <code>/Users</code>.",
        "<kbd>Unique identifier field for users</kbd> must be <code>userName</code>.",
        "The test passing is not enough: nothing is provisioned until <kbd>Create Users</kbd>, <kbd>Update User Attributes</kbd> and <kbd>Deactivate Users</kbd> are enabled under <kbd>To App</kbd> and users are assigned.",
        "Okta never deletes users: unassigning or deactivating a user in Okta deactivates them here (<code>active: false</code>).",
        "Push a <strong>different</strong> Okta group from the one used for assignment; only members already assigned to the app are pushed, and Group Push grants no access by itself.",
        "If you use the Okta catalog template <kbd>SCIM 2.0 Test App (Header Auth)</kbd> instead, its <kbd>API Token</kbd> field is sent verbatim: type <code>Bearer </code> followed by the token, or every call fails with 401.",
    ],
};

const ENTRA: Provider = Provider {
    slug: "entra",
    name: "Microsoft Entra ID",
    blurb: "Entra ID enterprise application with automatic provisioning",
    steps: &[
        "In the Microsoft Entra admin center (as at least <strong>Application Administrator</strong>) go to <kbd>Entra ID</kbd> → <kbd>Enterprise apps</kbd> (older: <kbd>Identity</kbd> → <kbd>Applications</kbd> → <kbd>Enterprise applications</kbd>) → <kbd>+ New application</kbd> → <kbd>+ Create your own application</kbd>, enter a name, choose <kbd>Integrate any other application you don't find in the gallery (Non-gallery)</kbd> → <kbd>Create</kbd>.",
        "Open the app → <kbd>Provisioning</kbd>. Current console: <kbd>+ New configuration</kbd>. Older console: <kbd>Get started</kbd>, set <kbd>Provisioning Mode</kbd> to <kbd>Automatic</kbd> and expand <kbd>Admin Credentials</kbd>.",
        "Paste the <strong>Endpoint URL</strong> into <kbd>Tenant URL</kbd> and the <strong>Bearer token</strong> into <kbd>Secret Token</kbd> (never leave it blank).",
        "Click <kbd>Test Connection</kbd>, wait for the success banner, then <kbd>Create</kbd> (older console: <kbd>Save</kbd>).",
        "<kbd>Users and groups</kbd> → <kbd>+ Add user/group</kbd> → pick users and/or groups → <kbd>Assign</kbd>.",
        "Check <kbd>Attribute mapping</kbd> (older: <kbd>Mappings</kbd>): <kbd>Provision Microsoft Entra ID Users</kbd> enabled with <code>userName</code> ← <code>userPrincipalName</code> (map <code>mail</code> instead if UPNs are not email addresses); <kbd>Provision Microsoft Entra ID Groups</kbd> enabled to sync groups. Keep <kbd>Scope</kbd> = <kbd>Sync only assigned users and groups</kbd>.",
        "Use <kbd>Provision on demand</kbd> on one user to test end to end (under 30 seconds), then <kbd>Overview</kbd> → <kbd>Start provisioning</kbd> (older console: <kbd>Provisioning Status</kbd> = <kbd>On</kbd> → <kbd>Save</kbd>).",
    ],
    warnings: &[
        "Entra runs provisioning in cycles: the initial cycle takes 20 minutes to several hours, then changes arrive about every <strong>40 minutes</strong>. Use <kbd>Provision on demand</kbd> to test a single user immediately.",
        "Keep <kbd>Scope</kbd> on <kbd>Sync only assigned users and groups</kbd>; <kbd>Sync all users and groups</kbd> provisions the whole tenant.",
        "Optional: appending <code>?aadOptscim062020</code> to the <kbd>Tenant URL</kbd> switches Entra to its RFC-compliant PATCH behaviour. This service accepts both dialects, so this is not required (and <kbd>Provision on demand</kbd> ignores the flag).",
        "Assigning groups requires Entra ID P1 or P2, and members of nested groups are not provisioned.",
        "If you rotate the Bearer token, update <kbd>Secret Token</kbd> before revoking the old one: repeated 401s put the job in quarantine (one cycle a day). After fixing it, use <kbd>Restart provisioning</kbd>.",
        "Unassigned users are deactivated here (<code>active: false</code>), not deleted.",
    ],
};

const ONELOGIN: Provider = Provider {
    slug: "onelogin",
    name: "OneLogin",
    blurb: "OneLogin SCIM Provisioner with SAML (SCIM v2 Enterprise)",
    steps: &[
        "In OneLogin go to <kbd>Administration</kbd> → <kbd>Applications</kbd> → <kbd>Applications</kbd> → <kbd>Add App</kbd>, search <kbd>SCIM Provisioner with SAML (SCIM v2 Enterprise)</kbd>, set a <kbd>Display Name</kbd> → <kbd>Save</kbd>.",
        "<kbd>Configuration</kbd> tab → <kbd>API Connection</kbd>: paste the <strong>Endpoint URL</strong> into <kbd>SCIM Base URL</kbd> and the <strong>Bearer token</strong> into <kbd>SCIM Bearer Token</kbd>; keep the default <kbd>SCIM JSON Template</kbd>. Click <kbd>Enable</kbd> under <kbd>API Status</kbd> → <kbd>Save</kbd>.",
        "<kbd>Parameters</kbd> tab: set <kbd>SCIM Username</kbd> to Email (or Username). For groups, click the <kbd>Groups</kbd> row, tick <kbd>Include in User Provisioning</kbd> → <kbd>Save</kbd>.",
        "<kbd>Provisioning</kbd> tab: tick <kbd>Enable provisioning</kbd>, untick <kbd>Create user</kbd>, <kbd>Delete user</kbd> and <kbd>Update user</kbd> under <kbd>Require admin approval before this action is performed</kbd>, choose <kbd>Suspend</kbd> for deprovisioning (recommended) → <kbd>Save</kbd>.",
        "For groups: <kbd>Rules</kbd> tab → <kbd>Add Rule</kbd> with the action <kbd>Set Groups in</kbd> this app (e.g. for each role) → <kbd>Save</kbd>.",
        "Give users access through the app's <kbd>Access</kbd> tab (roles) or per user under <kbd>Users</kbd> → <kbd>Applications</kbd>. They appear here within seconds.",
    ],
    warnings: &[
        "If admin approval stays ticked, every create/update/delete waits as <strong>Pending</strong> under <kbd>Users</kbd> → <kbd>Provisioning</kbd> until approved.",
        "Map <kbd>SCIM Username</kbd> on the <kbd>Parameters</kbd> tab; otherwise users arrive with a blank <code>userName</code>.",
        "Groups need both the <kbd>Groups</kbd> parameter included in provisioning and a <kbd>Set Groups in</kbd> rule.",
        "OneLogin provisioning requires a plan that includes it.",
    ],
};

const JUMPCLOUD: Provider = Provider {
    slug: "jumpcloud",
    name: "JumpCloud",
    blurb: "JumpCloud custom SCIM Identity Management",
    steps: &[
        "In the JumpCloud Admin Portal go to <kbd>SSO Applications</kbd> → <kbd>+ Add New Application</kbd> → <kbd>Custom Application</kbd> → <kbd>Next</kbd>, select <kbd>Export users to this app (Identity Management)</kbd> → <kbd>Next</kbd>, set a <kbd>Display Label</kbd> → <kbd>Save Application</kbd> → <kbd>Configure Application</kbd>.",
        "<kbd>Identity Management</kbd> tab: set <kbd>API Type</kbd> to <kbd>SCIM API</kbd> and <kbd>SCIM Version</kbd> to <kbd>SCIM 2.0</kbd>; paste the <strong>Endpoint URL</strong> into <kbd>Base URL</kbd> (no trailing slash) and the <strong>Bearer token</strong> into <kbd>Token Key</kbd>; enter a new, unused address as <kbd>Test User Email</kbd>.",
        "Tick <kbd>Enable management of User Groups and Group Membership in this application</kbd>.",
        "Click <kbd>Test Connection</kbd>, then <kbd>Activate</kbd> → <kbd>Save</kbd>.",
        "On the app's <kbd>User Groups</kbd> tab tick the JumpCloud user groups to provision → <kbd>Save</kbd>. Their members and the groups appear here within minutes.",
    ],
    warnings: &[
        "<kbd>Test Connection</kbd> creates a real test user (with the <kbd>Test User Email</kbd>) and a test group here, then deletes both. This is expected and harmless.",
        "<kbd>Test User Email</kbd> must be an address no existing user has; JumpCloud asks for a fresh one whenever you edit an active connector.",
        "Only users in bound user groups are provisioned; empty groups are not created, and unbinding a group deactivates its members unless another bound group covers them.",
        "Remove any trailing <code>/</code> from <kbd>Base URL</kbd>.",
    ],
};

const RIPPLING: Provider = Provider {
    slug: "rippling",
    name: "Rippling",
    blurb: "Rippling custom app with User Management via SCIM",
    steps: &[
        "In Rippling create a custom app: <kbd>Custom App</kbd> → <kbd>Create New App</kbd> (newer consoles: <kbd>IT</kbd> → <kbd>Third-Party Access</kbd> → <kbd>Add Integration</kbd> → <kbd>Create New Custom Integration</kbd>). Enter a name and <kbd>Categories</kbd>, tick <kbd>User Management via SCIM</kbd> → <kbd>Continue</kbd>.",
        "On the SCIM form set <kbd>SCIM version</kbd> to 2.0, paste the <strong>Endpoint URL</strong> into <kbd>SCIM base URL</kbd>, set <kbd>SCIM Authorization Method</kbd> to <kbd>Bearer Token</kbd>, turn on <kbd>Supports groups</kbd> with <kbd>Not Mutually Exclusive Groups</kbd>, <kbd>Supports pagination</kbd>, <kbd>Create &amp; Delete Groups</kbd> and <kbd>Use PATCH to edit Groups</kbd>; list <code>userName</code>, <code>name.givenName</code>, <code>name.familyName</code>, <code>emails</code>, <code>displayName</code>, <code>active</code>, <code>externalId</code> under <kbd>Supported SCIM Attributes</kbd> → <kbd>Continue</kbd>.",
        "Install the app (<kbd>I'm the admin, I'll install it</kbd>) and paste the <strong>Bearer token</strong> into <kbd>Bearer Token</kbd>.",
        "Set <kbd>App Access Rules</kbd> (who gets an account) and <kbd>Provision Time</kbd> (when); keep <kbd>Offboarding</kbd> enabled.",
        "Pick the Rippling groups to push, and choose <kbd>Match existing users</kbd> for people already in this portal.",
    ],
    warnings: &[
        "The Bearer token goes in at the install step, not on the SCIM form.",
        "<kbd>Mutually Exclusive Groups</kbd> limits every user to one group; choose <kbd>Not Mutually Exclusive Groups</kbd>. Attributes missing from <kbd>Supported SCIM Attributes</kbd> are never sent.",
        "Rippling has no test or sync-now button: provisioning follows <kbd>App Access Rules</kbd>, <kbd>Provision Time</kbd> and HR events, so nobody arrives if no one matches or the time is in the future.",
        "Choosing to create new accounts for people who already exist here causes duplicates or conflicts; use <kbd>Match existing users</kbd>.",
    ],
};

const GENERIC: Provider = Provider {
    slug: "generic",
    name: "Generic SCIM 2.0",
    blurb: "Any SCIM 2.0 client that authenticates with a bearer token",
    steps: &[
        "In your identity provider, create an application or connection that provisions users via <strong>SCIM 2.0</strong>.",
        "Paste the <strong>Endpoint URL</strong> as the SCIM base URL, exactly as shown: no trailing slash and no <code>/Users</code> suffix (the client appends <code>/Users</code> and <code>/Groups</code>).",
        "Choose bearer-token authentication and paste the <strong>Bearer token</strong>. If the field is sent verbatim as the <code>Authorization</code> header, enter <code>Bearer </code> followed by the token.",
        "Set the user identifier to <code>userName</code> and enable create, update and deactivate (and group push, if offered).",
        "Run the provider's connection test, assign users and groups, and watch them appear here.",
    ],
    warnings: &[
        "The Endpoint URL must be reachable from the internet over HTTPS with a publicly trusted certificate.",
        "Prefer deactivating users over deleting them when they lose access, to keep the audit trail.",
    ],
};

/// All providers, in picker order (PingIdentity first, Generic last).
pub const ALL: &[Provider] = &[
    PINGIDENTITY,
    OKTA,
    ENTRA,
    ONELOGIN,
    JUMPCLOUD,
    RIPPLING,
    GENERIC,
];

/// The provider with this slug.
pub fn by_slug(slug: &str) -> Option<&'static Provider> {
    ALL.iter().find(|p| p.slug == slug)
}

impl Provider {
    /// The initial shown in the neutral badge (first letter of the name).
    pub fn initial(&self) -> char {
        self.name.chars().next().unwrap_or('?')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_providers_in_order() {
        assert_eq!(ALL.len(), 7);
        assert_eq!(ALL.first().map(|p| p.slug), Some("pingidentity"));
        assert_eq!(ALL.last().map(|p| p.slug), Some("generic"));
    }

    #[test]
    fn slugs_unique_and_lowercase() {
        for (i, a) in ALL.iter().enumerate() {
            assert!(!a.slug.is_empty());
            assert!(
                a.slug.chars().all(|c| c.is_ascii_lowercase()),
                "bad slug {}",
                a.slug
            );
            for b in ALL.iter().skip(i + 1) {
                assert_ne!(a.slug, b.slug);
            }
        }
    }

    #[test]
    fn every_provider_has_steps() {
        for p in ALL {
            assert!(p.steps.len() >= 3, "{} has too few steps", p.slug);
        }
    }

    #[test]
    fn by_slug_works() {
        for p in ALL {
            assert_eq!(by_slug(p.slug), Some(p));
        }
        assert_eq!(by_slug("entra").map(|p| p.name), Some("Microsoft Entra ID"));
        assert!(by_slug("nope").is_none());
        assert!(by_slug("").is_none());
    }

    #[test]
    fn pingidentity_has_eight_steps() {
        assert_eq!(by_slug("pingidentity").map(|p| p.steps.len()), Some(8));
    }

    #[test]
    fn no_script_tags() {
        for p in ALL {
            for s in p.steps.iter().chain(p.warnings.iter()) {
                assert!(
                    !s.to_ascii_lowercase().contains("<script"),
                    "{}: {}",
                    p.slug,
                    s
                );
            }
        }
    }

    #[test]
    fn initials() {
        assert_eq!(by_slug("okta").map(|p| p.initial()), Some('O'));
        assert_eq!(by_slug("generic").map(|p| p.initial()), Some('G'));
    }
}
