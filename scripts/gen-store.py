#!/usr/bin/env python3
"""Writes a valid connctl store with N connections spread over M integrations.

usage: gen-store.py CONNECTIONS INTEGRATIONS PATH

Connection i belongs to integration i % M and is named conn-<i>; integration
j is named int-<j>. Integration j's first connection is active, so activating
any other connection of it has a sibling to turn off. Every fifth connection
uses basic authentication with an env: password source, every seventh has
variables.
"""
import sys
import uuid

ENVS = ["production", "pre-production", "test", "development", "sandbox"]


def main():
    n, m, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    out = ["version = 1", f'store_id = "{uuid.uuid4()}"', ""]
    for j in sorted(range(m), key=lambda j: f"int-{j:05}"):
        out += [f"[integration.int-{j:05}]", f'application = "Application {j % 17}"',
                f'description = "Generated integration {j}"', ""]
    for i in sorted(range(n), key=lambda i: f"conn-{i:06}"):
        j = i % m
        active = "true" if i < m else "false"
        out += [f'[connection."conn-{i:06}"]', f'integration = "int-{j:05}"',
                f'environment = "{ENVS[(i // m) % len(ENVS)]}"', f"active = {active}",
                f'endpoint_url = "https://host-{j}.example.com/api/now/table/incident"']
        if i % 5 == 0:
            out += ['authentication = "basic"', f'user = "svc.user{i}"', f'password = "env:PW_{i}"']
        else:
            out += ['authentication = "none"']
        if i % 7 == 0:
            out += [f'[connection."conn-{i:06}".variables]', 'table = "incident"', f'sys_id = "{i:032x}"']
        out.append("")
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
