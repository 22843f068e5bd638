"""A deliberately changed ApplicationWorkflow, for the replay test (its own module: the sandbox
re-imports the module a workflow is defined in)."""

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="ApplicationWorkflow")
class ChangedWorkflow:
    """Someone 'improved' the workflow: it now waits a second before anything else."""

    @workflow.run
    async def run(self, inp: dict) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return "closed"
