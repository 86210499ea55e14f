"""A crawl frontier on ``UniqueQ``: no URL is queued twice, so none is crawled twice.

Seeds go in, a fake fetch "discovers" links (many of them already seen), and
the crawler runs until the frontier is empty. ``UniqueQ`` refuses an item equal
to one still waiting; a ``PDict`` remembers what was crawled, so a URL that was
already taken out of the queue is not put back either. Both survive a restart:
run the script twice on the same directory and the second run crawls nothing.

Run: ``python examples/crawler_frontier.py [DIR]``.
"""

from __future__ import annotations

import sys
import tempfile

import persistq.sync

SEEDS = ["https://example.com/", "https://example.com/about", "https://example.com/"]
MAX_PAGES = 40


def fake_fetch(url: str) -> list[str]:
    """Pretend to fetch ``url``; return the links on the page (a small closed web)."""
    n = sum(map(ord, url)) % 7
    return [f"https://example.com/page/{(n * 3 + k) % 12}" for k in range(4)] + ["https://example.com/"]


def main() -> None:
    """Crawl from the seeds until the frontier is empty; check nothing was crawled twice."""
    path = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="persistq-crawler-")
    print(f"frontier directory: {path}")
    crawled: list[str] = []
    with (
        persistq.sync.UniqueQ(path, name="frontier", serializer=persistq.sync.serializers.json) as frontier,
        persistq.sync.PDict(path, "seen", serializer=persistq.sync.serializers.json) as seen,
    ):
        for url in SEEDS:
            added = frontier.put(url)
            print(f"seed  {url}{'' if added is not None else '  (duplicate: ignored)'}")
        while not frontier.empty() and len(crawled) < MAX_PAGES:
            url = frontier.get()
            if url in seen:
                continue
            seen[url] = True
            crawled.append(url)
            links = fake_fetch(url)
            new = [link for link in links if link not in seen and frontier.put(link) is not None]
            print(f"crawl {url:<32} {len(links)} links, {len(new)} new")
    if len(crawled) != len(set(crawled)):
        sys.exit("a URL was crawled twice")
    print(f"crawled {len(crawled)} distinct URLs; the frontier is empty")


if __name__ == "__main__":
    main()
