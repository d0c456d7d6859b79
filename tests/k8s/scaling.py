"""`kubectl scale` acted out on one machine, for any way of running the pods: replicas are
started and stopped in StatefulSet order, the headless Service's name is republished (what the
endpoints controller and the cluster DNS do), and `/visits/all` must see exactly the live
replicas while the claims of the removed ones stay as they were."""

import json
import time

# The server reuses one round of the peers' answers for PEER_CACHE_MILLISECONDS (at most 1 s): a view
# asked right after a change waits that out, as a user reloading the page would.
PEER_CACHE_WINDOW = 1.0


def ordinal(name):
    return int(name.rsplit("-", 1)[1])


def view(pod):
    status, _, body = pod.get("/visits/all?format=json")
    assert status == 200, body
    return json.loads(body)


def check_scaling(start, stop, publish, claim_lines, sts_name, sizes=(3, 5, 2, 3)):
    """start(name) -> pod, stop(pod), publish(names), claim_lines(name) -> lines on disk."""
    live, visits, seen = {}, {}, []
    for size in sizes:
        wanted = [f"{sts_name}-{i}" for i in range(size)]
        # Scaling down removes the highest ordinals first; their claims are retained.
        for name in sorted(set(live) - set(wanted), key=ordinal, reverse=True):
            stop(live.pop(name))
        # A new pod's name resolves as soon as it has an address (not-ready ones included).
        publish(wanted)
        for name in wanted:
            if name not in live:
                live[name] = start(name)
        for name in wanted:
            status, headers, _ = live[name].get("/")
            assert status == 200 and headers["x-served-by"] == name
            visits[name] = visits.get(name, 0) + 1
        time.sleep(PEER_CACHE_WINDOW)
        for asker in (wanted[0], wanted[-1]):
            answer = view(live[asker])
            down = [r for r in answer["replicas"] if not r["up"]]
            assert not down, f"scaled to {size}, {asker} sees replicas down: {down}"
            counts = {r["pod"]: r["count"] for r in answer["replicas"]}
            assert counts == {name: visits[name] for name in wanted}, \
                f"scaled to {size}, {asker}'s /visits/all sees {sorted(counts)}"
        for name in set(visits) - set(wanted):
            assert len(claim_lines(name)) == visits[name], f"{name}'s claim is retained"
        seen.append(size)
    return seen
