//! Neutron's rule and group checks, case by case.

use serde_json::{json, Value};

use super::*;

fn rule(fields: Value) -> Result<NewRule, NeutronError> {
    let mut r = json!({"security_group_id": "sg-1", "direction": "ingress"});
    for (k, v) in fields.as_object().unwrap() {
        r[k] = v.clone();
    }
    parse_rule_create(&json!({ "security_group_rule": r }))
}

fn refused(fields: Value) -> NeutronError {
    rule(fields.clone()).expect_err(&format!("{fields} was accepted"))
}

#[test]
fn the_guides_rule_as_the_openstack_cli_sends_it() {
    let r = rule(
        json!({"ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80,
        "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}),
    )
    .unwrap();
    assert_eq!(r.direction, Direction::Ingress);
    assert_eq!(r.protocol, Some(RuleProtocol::Tcp));
    assert_eq!((r.port_range_min, r.port_range_max), (Some(80), Some(80)));
    assert_eq!(r.remote_ip_prefix.unwrap().to_string(), "0.0.0.0/0");
    // Defaults: IPv4, any protocol, any port, anyone.
    let r = rule(json!({})).unwrap();
    assert_eq!(r.ethertype, Ethertype::IPv4);
    assert_eq!(r.protocol, None);
    assert_eq!(r.remote_ip_prefix, None);
}

#[test]
fn protocols_by_name_number_and_any() {
    assert_eq!(
        rule(json!({"protocol": "UDP"})).unwrap().protocol,
        Some(RuleProtocol::Udp)
    );
    assert_eq!(
        rule(json!({"protocol": "6"})).unwrap().protocol,
        Some(RuleProtocol::Tcp)
    );
    assert_eq!(
        rule(json!({"protocol": 132})).unwrap().protocol,
        Some(RuleProtocol::Number(132))
    );
    assert_eq!(rule(json!({"protocol": "any"})).unwrap().protocol, None);
    assert_eq!(rule(json!({"protocol": null})).unwrap().protocol, None);
    for bad in [
        json!("http"),
        json!(256),
        json!(-1),
        json!("1.5"),
        json!([6]),
    ] {
        let e = refused(json!({ "protocol": bad }));
        assert_eq!(e.kind, "SecurityGroupRuleInvalidProtocol", "{bad}");
        assert!(e.message.contains("not supported"), "{}", e.message);
    }
}

#[test]
fn ports_are_checked_as_neutron_does() {
    let cases = [
        (
            json!({"port_range_min": 80, "port_range_max": 80}),
            "SecurityGroupProtocolRequiredWithPorts",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": "x"}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": -5}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"protocol": "udp", "port_range_max": 80}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"protocol": "icmp", "port_range_min": 256}),
            "SecurityGroupInvalidIcmpValue",
        ),
        (
            json!({"protocol": "icmp", "port_range_max": 0}),
            "SecurityGroupMissingIcmpType",
        ),
        (
            json!({"protocol": 47, "port_range_min": 1, "port_range_max": 2}),
            "SecurityGroupInvalidProtocolForPort",
        ),
    ];
    for (fields, kind) in cases {
        let e = refused(fields.clone());
        assert_eq!(e.kind, kind, "{fields}: {}", e.message);
        assert_eq!(e.status, 400);
    }
    assert_eq!(
        refused(json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80})).message,
        "For TCP/UDP protocols, port_range_min must be <= port_range_max"
    );
    assert_eq!(
        refused(json!({"protocol": "tcp", "port_range_min": 70000})).message,
        "Invalid value for port 70000."
    );
    // Strings of digits are ports (the CLI sends numbers, others send strings).
    let r =
        rule(json!({"protocol": "tcp", "port_range_min": "1", "port_range_max": "65535"})).unwrap();
    assert_eq!((r.port_range_min, r.port_range_max), (Some(1), Some(65535)));
    // ICMP type and code.
    let r = rule(json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0})).unwrap();
    assert_eq!((r.port_range_min, r.port_range_max), (Some(8), Some(0)));
}

#[test]
fn remotes_and_ethertypes() {
    let e = refused(json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "sg-2"}));
    assert_eq!(e.kind, "SecurityGroupRemoteGroupAndRemoteIpPrefix");
    let e = refused(json!({"remote_ip_prefix": "2001:db8::/32"}));
    assert_eq!(
        e.message,
        "Conflicting value ethertype IPv4 for CIDR 2001:db8::/32"
    );
    assert!(rule(json!({"ethertype": "ipv6", "remote_ip_prefix": "2001:db8::/32"})).is_ok());
    for bad in [
        "10.0.0.0/33",
        "10.0.0",
        "10.0.0.0/",
        "10.0.0.0/8/8",
        "abc",
        "::/129",
        "10.0.0.0/+8",
    ] {
        let e = refused(json!({ "remote_ip_prefix": bad }));
        assert_eq!(e.kind, "InvalidCIDR", "{bad}");
    }
    let e = refused(json!({"ethertype": "IPv5"}));
    assert!(
        e.message.contains("is not in valid values [IPv4, IPv6]"),
        "{}",
        e.message
    );
    let e = refused(json!({"protocol": "icmpv6"}));
    assert_eq!(e.kind, "SecurityGroupEthertypeConflictWithProtocol");
    assert!(rule(json!({"ethertype": "IPv6", "protocol": "ipv6-icmp"})).is_ok());
}

#[test]
fn cidrs_are_normalised_and_match() {
    let c = Cidr::parse("10.1.2.3/8").unwrap();
    assert_eq!(c.to_string(), "10.0.0.0/8");
    assert!(c.contains("10.200.0.1".parse().unwrap()));
    assert!(!c.contains("127.0.0.1".parse().unwrap()));
    assert!(!c.contains("::1".parse().unwrap()));
    assert_eq!(
        Cidr::parse("127.0.0.1").unwrap().to_string(),
        "127.0.0.1/32"
    );
    assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("192.0.2.9".parse().unwrap()));
    assert_eq!(
        Cidr::parse("2001:db8::1/32").unwrap().to_string(),
        "2001:db8::/32"
    );
}

#[test]
fn direction_and_body_shape() {
    assert_eq!(
        refused(json!({"direction": "inbound"})).kind,
        "HTTPBadRequest"
    );
    let no_direction =
        parse_rule_create(&json!({"security_group_rule": {"security_group_id": "x"}}));
    assert!(no_direction
        .unwrap_err()
        .message
        .contains("'direction' not specified"));
    let no_group = parse_rule_create(&json!({"security_group_rule": {"direction": "egress"}}));
    assert!(no_group
        .unwrap_err()
        .message
        .contains("'security_group_id' not specified"));
    let e = refused(json!({"priority": 1}));
    assert_eq!(e.message, "Unrecognized attribute(s) 'priority'");
    for body in [
        json!([]),
        json!({}),
        json!({"security_group_rule": "x"}),
        json!({"security_group_rule": {}, "extra": {}}),
    ] {
        assert_eq!(parse_rule_create(&body).unwrap_err().status, 400, "{body}");
    }
}

#[test]
fn duplicates_ignore_only_the_description() {
    let a = rule(
        json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.0/0", "description": "web"}),
    )
    .unwrap();
    let b = rule(
        json!({"protocol": "6", "port_range_min": "80", "port_range_max": 80,
        "remote_ip_prefix": "0.0.0.0/0"}),
    )
    .unwrap();
    assert!(a.same_as(&b));
    let c = rule(
        json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 81,
        "remote_ip_prefix": "0.0.0.0/0"}),
    )
    .unwrap();
    assert!(!a.same_as(&c));
}

#[test]
fn groups_are_named_but_not_default() {
    let g = parse_group_create(&json!({"security_group": {"name": "web", "description": "d"}}))
        .unwrap();
    assert_eq!(g.name.as_deref(), Some("web"));
    let e = parse_group_create(&json!({"security_group": {"name": "default"}})).unwrap_err();
    assert_eq!(
        (e.status, e.kind),
        (409, "SecurityGroupDefaultAlreadyExists")
    );
    let e = parse_group_create(&json!({"security_group": {"name": "x".repeat(256)}})).unwrap_err();
    assert_eq!(e.status, 400);
    let e = parse_group_update(&json!({"security_group": {"tenant_id": "p"}})).unwrap_err();
    assert!(e.message.contains("Unrecognized attribute(s) 'tenant_id'"));
    assert!(parse_group_update(&json!({"security_group": {}})).is_err());
    let u = parse_group_update(&json!({"security_group": {"description": "new"}})).unwrap();
    assert_eq!(u.description.as_deref(), Some("new"));
    assert_eq!(e.body()["NeutronError"]["type"], "HTTPBadRequest");
}
