"""What a job worker needs warm before its first job, imported once where workers start.

The local pool's fork server imports this module before it forks any worker, so every worker
starts with the numeric stack, the analytics, the chart renderers and the NYSE calendar
already loaded: without it each worker's first plan costs about 2.5 s of CPU instead of about
0.1 s, paid at the worst moment (the first requests of a burst). `coach worker` imports it
before it takes its first job. A front never imports it (the light front stays light).
"""

from __future__ import annotations

import analytics.chains
import analytics.iv
import analytics.planner
import analytics.scanner
import analytics.volatility
import bot.chart_service
import bot.market_setup
import bot.options_service
import bot.planning
import providers.router
import providers.sim
import renderers.fast_render
import renderers.plan_chart
import renderers.png
import storage.all_models
from analytics.sessions import schedule

#: The modules above, for a reader asking what is warm (importing them is the point of this module).
WARM = (
    analytics.chains,
    analytics.iv,
    analytics.planner,
    analytics.scanner,
    analytics.volatility,
    bot.chart_service,
    bot.market_setup,
    bot.options_service,
    bot.planning,
    providers.router,
    providers.sim,
    renderers.fast_render,
    renderers.plan_chart,
    renderers.png,
    storage.all_models,
)

schedule()  # the calendar is read once per process (about 0.2 s); forked workers inherit it
