//! `clouds.yaml` and `secure.yaml`: the named cloud's `auth` section, region and interface,
//! from the usual search paths (`./`, `~/.config/openstack/`, `/etc/openstack/`), or
//! `OS_CLIENT_CONFIG_FILE`.
