"""The scheduler (entry point beside the CLI and the API): `SocScheduler` runs the jobs of
`soc.services.jobs` on their schedules, with APScheduler's job store in our own database."""

from soc.scheduler.scheduler import SocScheduler

__all__ = ["SocScheduler"]
