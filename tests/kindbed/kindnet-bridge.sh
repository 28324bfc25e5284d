#!/bin/sh
# The kind bed's stand-in for kindnetd, whose source the Go module proxy does not
# serve. It runs where kind runs kindnetd (the kindnet DaemonSet, host network,
# /etc/cni/net.d mounted) and gives a one-node cluster pod networking with the
# standard CNI plugins of the node image: a Linux bridge with host-local
# addresses from POD_SUBNET, masquerading for traffic leaving the node, hairpin
# for a pod reaching itself through a Service, and portmap for hostPorts.
# Unlike kindnetd: one node only (no routes to other nodes), IPv4 only, and no
# NetworkPolicy enforcement. See tests/kindbed/README.md.
set -eu
: "${POD_SUBNET:?POD_SUBNET is set by kind's kindnet manifest}"
dir=/etc/cni/net.d
tmp="$dir/.10-kindnet.conflist.tmp"
cat > "$tmp" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "kindnet",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "kind-br0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "${POD_SUBNET}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
CONF
mv "$tmp" "$dir/10-kindnet.conflist"
echo "kindnet-bridge: wrote $dir/10-kindnet.conflist for ${POD_SUBNET}"
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
