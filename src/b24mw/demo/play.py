"""The order of the demo's scenes: what a person, 1C and a customer do, one
after another (each scene builds on the ones before it)."""

from __future__ import annotations

from b24mw.demo import crm_support
from b24mw.demo.flows import Story
from b24mw.demo.narrator import Narrator
from b24mw.demo.world import World


async def play(world: World, say: Narrator, locale: str) -> Story:
    story = Story(world, say, locale)
    await story.people()
    await story.tagged_task()
    await story.statuses()
    await story.rejected_return()
    # The customer asks about the order before any delivery exists, so the
    # order's number names that order only (docs/support.md: a number names
    # the instant order and the delivery with that id alike).
    await crm_support.customer_chat(story)
    await story.delivery()
    await crm_support.deal_closed(story)
    await story.reports()
    return story
