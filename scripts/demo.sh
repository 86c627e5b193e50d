#!/bin/sh
# demo.sh: the README's first command. Installs what is missing, builds,
# and runs the main job. Until the gossip node exists (issue: "The gossip
# learning node"), the main job is what exists today: make identities for
# a small cluster and check a configuration for each site.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build >/dev/null
cmake --build build -j"$jobs"
S=build/sotto

out=demo-out
rm -rf "$out"
mkdir -p "$out"
echo "== sotto demo: the node daemon is not built yet; showing identities and config checks"
for site in a b c d; do
	(umask 077 && $S keygen "$out/site-$site.key")
done
for site in a b c d; do
	conf="$out/site-$site.conf"
	{
		printf '[Node]\nName = site-%s\nPrivateKeyFile = site-%s.key\n' "$site" "$site"
		printf 'Listen = 127.0.0.1:%d\nDataDir = data-%s\n\n' \
			"$((7000 + $(printf '%d' "'$site") - 97))" "$site"
		printf '[Training]\nDataset = ../data/mnist-train.sdat.gz\n\n'
		for peer in a b c d; do
			[ "$peer" = "$site" ] && continue
			printf '[Peer]\nName = site-%s\nPublicKey = %s\nEndpoint = 127.0.0.1:%d\n\n' \
				"$peer" "$($S pubkey <"$out/site-$peer.key")" \
				"$((7000 + $(printf '%d' "'$peer") - 97))"
		done
	} >"$conf"
	printf '%s: ' "$conf"
	$S check -c "$conf"
done
