"""The inbox's HTTP API for services: the approvals waiting for the token's approver, decisions,
past decisions. Bearer tokens (CADENZA_INBOX_TOKENS) name the approver; the OpenAPI document at
/openapi.json describes it."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from worker.inbox.auth import bearer_approver
from worker.inbox.context import Inbox
from worker.inbox.queries import Decided, PastDecision, Refused, WaitingApproval

bearer = HTTPBearer(auto_error=False, description="A token of CADENZA_INBOX_TOKENS.")


class DecisionRequest(BaseModel):
    """A decision on a waiting approval step."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(description="Approve, or reject (one rejects).")
    comment: str = Field("", max_length=2000, description="Why; a rejection's reason.")


class Problem(BaseModel):
    """Why a request was refused, in plain words."""

    detail: str


ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "No valid bearer token."},
    403: {"model": Problem, "description": "Not an approver of this step."},
    404: {"model": Problem, "description": "No such run or approval step."},
    409: {"model": Problem, "description": "Already decided, or no longer waiting."},
    503: {"model": Problem, "description": "Temporal cannot be reached now."},
}

RunId = Annotated[str, Path(min_length=1, max_length=1000, description="The run's execution id.")]
StepId = Annotated[str, Path(min_length=1, max_length=300, description="The approval step's id.")]


def routes(inbox: Inbox) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["approvals"], responses=ERRORS)

    def approver(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str:
        who = bearer_approver(request, inbox.tokens)
        if who is None:
            raise Refused(401, "Send Authorization: Bearer TOKEN with a configured token.")
        return who

    Approver = Annotated[str, Depends(approver)]

    @router.get("/approvals", summary="Approvals waiting for the token's approver")
    async def waiting(who: Approver) -> list[WaitingApproval]:
        return await inbox.queries.waiting_for(who)

    @router.post("/approvals/{run}/{step}", summary="Approve or reject a waiting approval step")
    async def decide(who: Approver, run: RunId, step: StepId, body: DecisionRequest) -> Decided:
        return await inbox.queries.decide(who, run, step, body.decision, body.comment)

    @router.get("/history", summary="The token's approver's past decisions")
    async def history(who: Approver) -> list[PastDecision]:
        return await inbox.queries.history_of(who)

    return router
