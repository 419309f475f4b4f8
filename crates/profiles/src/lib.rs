//! Platform profiles: what each e-commerce platform's admin panel looks like in an access log.
//!
//! A [`Profile`] says, for one platform, where its admin panel lives by default (and whether
//! the shop can rename it), which requests are login attempts and how their outcome shows in
//! the access log, which admin routes plant code or change accounts, security or payment
//! settings, which routes take customer input, and which are checkout submit/complete/error.
//! Profiles are data: the bundled ones are JSON files under `profiles/` compiled into the
//! binary; a user may load their own with [`Profile::from_json`] (`--profile FILE`).
//!
//! Route patterns are written relative to the admin prefix with a leading `~`
//! (`~/content/css`), or absolute (`/wp-login.php`). A `*` segment matches one path segment,
//! a trailing `**` any rest (including nothing); text after `?` must occur in the query.
//! This crate knows no files, events or detection: it answers questions about paths.

use serde::{Deserialize, Serialize};

/// What an admin request does, for findings (and the card-skimming detectors).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminAction {
    /// A login attempt.
    Login,
    /// Template, page, block, CSS/JS edits, file manager, plugin or theme install.
    CodePlanting,
    /// Admin account created or changed, roles and authority.
    AccountChange,
    /// Allow-list, admin route, two-factor and other security settings.
    SecurityChange,
    /// Payment method settings.
    PaymentChange,
    /// Reading the shop's own logs from the admin panel.
    LogAccess,
}

impl AdminAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            AdminAction::Login => "login",
            AdminAction::CodePlanting => "code-planting",
            AdminAction::AccountChange => "account-change",
            AdminAction::SecurityChange => "security-change",
            AdminAction::PaymentChange => "payment-change",
            AdminAction::LogAccess => "log-access",
        }
    }
}

/// How a login request's outcome shows in the access log.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutcomeRule {
    /// The response status tells (`success_status` / `failure_status`).
    Status,
    /// Both outcomes answer alike; the same client's next admin request tells
    /// (`success_next` / `failure_next`). EC-CUBE 3/4, PrestaShop.
    NextRequest,
}

/// One route pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub path: String,
    /// Methods the route counts for (empty: any).
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<AdminAction>,
    /// Per-route outcome statuses, overriding the login's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_status: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_status: Option<Vec<u16>>,
}

/// How logins look.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub routes: Vec<Route>,
    pub outcome: OutcomeRule,
    #[serde(default)]
    pub success_status: Vec<u16>,
    #[serde(default)]
    pub failure_status: Vec<u16>,
    #[serde(default)]
    pub success_next: Vec<String>,
    #[serde(default)]
    pub failure_next: Vec<String>,
}

/// One platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub display: String,
    /// Default admin prefixes, without a trailing slash.
    pub admin_prefixes: Vec<String>,
    /// Whether shops commonly rename the admin prefix.
    pub renamable: bool,
    pub login: Login,
    /// Admin routes any visitor is served without a session (login form, assets, AJAX).
    #[serde(default)]
    pub public_routes: Vec<Route>,
    /// Admin routes with a security meaning.
    #[serde(default)]
    pub admin_routes: Vec<Route>,
    /// Route shapes typical of this platform, used to tell platforms apart.
    #[serde(default)]
    pub markers: Vec<String>,
    #[serde(default)]
    pub customer_input: Vec<String>,
    #[serde(default)]
    pub checkout_submit: Vec<String>,
    #[serde(default)]
    pub checkout_complete: Vec<String>,
    #[serde(default)]
    pub checkout_error: Vec<String>,
}

/// A profile file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError(pub String);

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid profile: {}", self.0)
    }
}

impl std::error::Error for ProfileError {}

const BUNDLED: &[&str] = &[
    include_str!("../profiles/eccube4.json"),
    include_str!("../profiles/eccube3.json"),
    include_str!("../profiles/eccube2.json"),
    include_str!("../profiles/magento2.json"),
    include_str!("../profiles/wordpress.json"),
    include_str!("../profiles/prestashop.json"),
    include_str!("../profiles/generic.json"),
];

/// The bundled profiles, in inference tie-break order (generic last).
pub fn bundled() -> Vec<Profile> {
    BUNDLED
        .iter()
        .map(|s| Profile::from_json(s).expect("bundled profile is valid"))
        .collect()
}

/// A bundled profile by name (also accepts `ec-cube4`, `magento`, `woocommerce`, …).
pub fn by_name(name: &str) -> Option<Profile> {
    let n = name.to_ascii_lowercase().replace(['-', '_', ' '], "");
    let n = match n.as_str() {
        "eccube" | "eccube4x" => "eccube4",
        "eccube3x" => "eccube3",
        "eccube2x" => "eccube2",
        "magento" | "adobecommerce" => "magento2",
        "woocommerce" | "wp" => "wordpress",
        other => other,
    }
    .to_string();
    bundled().into_iter().find(|p| p.name == n)
}

/// Names of the bundled profiles.
pub fn names() -> Vec<String> {
    bundled().into_iter().map(|p| p.name).collect()
}

impl Profile {
    /// Reads and checks a profile.
    pub fn from_json(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = serde_json::from_str(text).map_err(|e| ProfileError(e.to_string()))?;
        if p.name.is_empty() {
            return Err(ProfileError("empty name".into()));
        }
        if p.login.routes.is_empty() {
            return Err(ProfileError(format!("{}: no login routes", p.name)));
        }
        for pre in &p.admin_prefixes {
            if !pre.starts_with('/') || pre.ends_with('/') {
                return Err(ProfileError(format!(
                    "{}: admin prefix '{pre}' must start with '/' and not end with one",
                    p.name
                )));
            }
        }
        let all = p
            .login
            .routes
            .iter()
            .chain(&p.public_routes)
            .chain(&p.admin_routes)
            .map(|r| r.path.as_str())
            .chain(p.markers.iter().map(|s| s.as_str()));
        for pat in all {
            if !(pat.starts_with('/') || pat.starts_with("~/") || pat == "~") {
                return Err(ProfileError(format!(
                    "{}: route '{pat}' must start with '/' or '~/'",
                    p.name
                )));
            }
        }
        Ok(p)
    }

    /// Whether a request is a login attempt under `prefix`; returns the matching route.
    pub fn login_route(
        &self,
        prefix: &str,
        method: &str,
        path: &str,
        query: &str,
    ) -> Option<&Route> {
        self.login
            .routes
            .iter()
            .find(|r| route_matches(r, prefix, method, path, query))
    }

    /// What an admin request does under `prefix`, if it is one with a security meaning.
    /// Login attempts are [`AdminAction::Login`]; the first matching admin route wins.
    pub fn classify_admin_route(
        &self,
        prefix: &str,
        method: &str,
        path: &str,
        query: &str,
    ) -> Option<AdminAction> {
        if self.login_route(prefix, method, path, query).is_some() {
            return Some(AdminAction::Login);
        }
        self.admin_routes
            .iter()
            .find(|r| route_matches(r, prefix, method, path, query))
            .and_then(|r| r.action)
    }

    /// Whether any visitor is served this admin route without a session.
    pub fn is_public(&self, prefix: &str, method: &str, path: &str, query: &str) -> bool {
        self.public_routes
            .iter()
            .any(|r| route_matches(r, prefix, method, path, query))
            || self.login_route(prefix, method, path, query).is_some()
    }

    /// Whether `path` is under `prefix` (the prefix itself included).
    pub fn under(prefix: &str, path: &str) -> bool {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Whether `path` (with `query`) matches one of `patterns` under `prefix`.
    pub fn any_matches(patterns: &[String], prefix: &str, path: &str, query: &str) -> bool {
        patterns
            .iter()
            .any(|p| pattern_matches(p, prefix, path, query))
    }

    /// The admin prefix a login request implies, for renamable panels: the path before one of
    /// this profile's relative login routes, when that leaves a single segment
    /// (`/mgr_x9k2/login` → `/mgr_x9k2` for EC-CUBE 4).
    pub fn implied_prefix(&self, method: &str, path: &str, query: &str) -> Option<String> {
        if !self.renamable {
            return None;
        }
        let seg1 = first_segment_prefix(path)?;
        if NOT_ADMIN_PREFIXES
            .iter()
            .any(|p| seg1.eq_ignore_ascii_case(p))
        {
            return None;
        }
        self.login_route(&seg1, method, path, query)
            .filter(|r| r.path.starts_with('~'))
            .map(|_| seg1)
    }
}

/// First path segments that are shop or installer routes on every platform, never a renamed
/// admin directory: a POST to `/install/index.php` is an installer step, not an admin login.
const NOT_ADMIN_PREFIXES: &[&str] = &[
    "/install",
    "/setup",
    "/upload",
    "/uploads",
    "/user_data",
    "/html",
    "/products",
    "/shopping",
    "/cart",
    "/mypage",
    "/entry",
    "/contact",
    "/forgot",
    "/help",
    "/api",
    "/wp-content",
    "/wp-includes",
    "/media",
    "/pub",
    "/static",
    "/js",
    "/css",
    "/img",
    "/images",
];

/// `/a/b/c` → `/a` (none for `/` or a bare file such as `/index.php`).
pub fn first_segment_prefix(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (seg, tail) = match rest.split_once('/') {
        Some((s, t)) => (s, Some(t)),
        None => (rest, None),
    };
    if seg.is_empty() || (tail.is_none() && seg.contains('.')) {
        return None;
    }
    Some(format!("/{seg}"))
}

fn route_matches(r: &Route, prefix: &str, method: &str, path: &str, query: &str) -> bool {
    (r.methods.is_empty() || r.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
        && pattern_matches(&r.path, prefix, path, query)
}

/// Matches one pattern (see the crate docs for the syntax).
pub fn pattern_matches(pattern: &str, prefix: &str, path: &str, query: &str) -> bool {
    let (pat, q) = match pattern.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pattern, None),
    };
    if let Some(q) = q {
        if !query.contains(q) {
            return false;
        }
    }
    let (pat, rest) = if let Some(rel) = pat.strip_prefix('~') {
        match path.strip_prefix(prefix) {
            Some(r) if r.is_empty() || r.starts_with('/') => (rel, r),
            _ => return false,
        }
    } else {
        (pat, path)
    };
    // `~/` and `~` match the prefix with or without its slash.
    let pat = pat.trim_end_matches('/');
    let rest = rest.trim_end_matches('/');
    let mut ps = pat.split('/').filter(|s| !s.is_empty());
    let mut xs = rest.split('/').filter(|s| !s.is_empty());
    loop {
        match (ps.next(), xs.next()) {
            (Some("**"), _) => return true,
            (None, None) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(x)) if p == x => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_profiles_load() {
        let all = bundled();
        assert_eq!(all.len(), 7);
        assert_eq!(all.last().unwrap().name, "generic");
        assert!(by_name("EC-CUBE4").is_some());
        assert!(by_name("woocommerce").is_some());
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches(
            "~/content/css",
            "/mgr",
            "/mgr/content/css",
            ""
        ));
        assert!(!pattern_matches(
            "~/content/css",
            "/admin",
            "/mgr/content/css",
            ""
        ));
        assert!(pattern_matches(
            "~/content/page/*/edit",
            "/admin",
            "/admin/content/page/3/edit",
            ""
        ));
        assert!(!pattern_matches(
            "~/content/page/*/edit",
            "/admin",
            "/admin/content/page/edit",
            ""
        ));
        assert!(pattern_matches("~/", "/admin", "/admin", ""));
        assert!(pattern_matches("~/", "/admin", "/admin/", ""));
        assert!(!pattern_matches("~/", "/admin", "/admin/order", ""));
        assert!(pattern_matches("~/**", "/admin", "/admin/order/1", ""));
        assert!(!pattern_matches("~/**", "/admin", "/administrator", ""));
        assert!(pattern_matches(
            "/wp-login.php",
            "/wp-admin",
            "/wp-login.php",
            ""
        ));
        assert!(pattern_matches(
            "~/update.php?action=upload-plugin",
            "/wp-admin",
            "/wp-admin/update.php",
            "action=upload-plugin"
        ));
        assert!(!pattern_matches(
            "~/update.php?action=upload-plugin",
            "/wp-admin",
            "/wp-admin/update.php",
            "action=upgrade"
        ));
    }

    #[test]
    fn classify_routes() {
        let ec4 = by_name("eccube4").unwrap();
        assert_eq!(
            ec4.classify_admin_route("/mgr", "POST", "/mgr/login", ""),
            Some(AdminAction::Login)
        );
        assert_eq!(
            ec4.classify_admin_route("/mgr", "GET", "/mgr/login", ""),
            None
        );
        assert_eq!(
            ec4.classify_admin_route("/mgr", "POST", "/mgr/content/block/12/edit", ""),
            Some(AdminAction::CodePlanting)
        );
        assert_eq!(
            ec4.classify_admin_route("/mgr", "POST", "/mgr/setting/system/member/new", ""),
            Some(AdminAction::AccountChange)
        );
        assert_eq!(
            ec4.classify_admin_route("/mgr", "POST", "/mgr/setting/system/security", ""),
            Some(AdminAction::SecurityChange)
        );
        assert_eq!(
            ec4.implied_prefix("POST", "/mgr_x9k2/login", ""),
            Some("/mgr_x9k2".into())
        );
        assert_eq!(ec4.implied_prefix("POST", "/login", ""), None);
        let wp = by_name("wordpress").unwrap();
        assert_eq!(wp.implied_prefix("POST", "/wp-login.php", ""), None);
        assert!(wp.is_public("/wp-admin", "POST", "/wp-admin/admin-ajax.php", ""));
        let mg = by_name("magento2").unwrap();
        let r = mg
            .login_route(
                "/admin_1wgrah",
                "POST",
                "/rest/V1/integration/admin/token",
                "",
            )
            .unwrap();
        assert_eq!(r.failure_status.as_deref(), Some(&[401u16][..]));
    }

    #[test]
    fn bad_profiles_are_refused() {
        assert!(Profile::from_json("{}").is_err());
        let mut p: serde_json::Value = serde_json::from_str(BUNDLED[0]).unwrap();
        p["admin_prefixes"] = serde_json::json!(["admin/"]);
        assert!(Profile::from_json(&p.to_string()).is_err());
    }
}
