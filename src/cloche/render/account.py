"""Pure: the shell script that makes the owner's account inside an environment."""

from __future__ import annotations

import shlex

OWNER_UID = 1000


def account_script(user: str) -> str:
    """A root shell script creating user (uid 1000) with passwordless sudo; keys come on stdin."""
    name = shlex.quote(user)
    return f"""set -eu
if ! id -u {name} >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --uid {OWNER_UID} --user-group {name}
fi
install -d -m 700 -o {name} -g {name} /home/{name}/.ssh
cat > /home/{name}/.ssh/authorized_keys.new
chown {name}:{name} /home/{name}/.ssh/authorized_keys.new
chmod 600 /home/{name}/.ssh/authorized_keys.new
mv /home/{name}/.ssh/authorized_keys.new /home/{name}/.ssh/authorized_keys
printf '%s ALL=(ALL) NOPASSWD:ALL\\n' {name} > /etc/sudoers.d/90-cloche-owner.new
chmod 440 /etc/sudoers.d/90-cloche-owner.new
visudo -cqf /etc/sudoers.d/90-cloche-owner.new
mv /etc/sudoers.d/90-cloche-owner.new /etc/sudoers.d/90-cloche-owner
"""


def authorized_keys(lines: list[str]) -> bytes:
    """The authorized_keys file for a user's key lines."""
    return "".join(f"{line}\n" for line in lines).encode()
