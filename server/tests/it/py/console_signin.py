"""The console of a server with an access key: signing in, the pages
working on the session cookie alone, signing out
(`../js/console_signin.mjs` in headless Chromium).

argv: endpoint, node_modules dir holding playwright-core, access key id,
secret access key."""

import sys

from common import done
from console_common import check_browser, run_browser_script
from video_common import watchdog

watchdog(150)
endpoint, modules, key_id, secret = sys.argv[1:5]
check_browser(modules)
run_browser_script("console_signin.mjs", modules, [endpoint, key_id, secret], timeout=120)
done()
