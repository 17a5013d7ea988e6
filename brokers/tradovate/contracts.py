"""Contract names ↔ Tradovate contract ids, learned once and shared by every login.

Orders are placed by name (``ESZ6``) but liquidations, positions, fills and quotes speak in
contract ids. Ids come from what the broker already sent (``contracts`` of a sync answer) and,
for the rest, from ``contract/find?name=`` and ``contract/item?id=``.
"""

from __future__ import annotations

from brokers.tradovate import entities
from brokers.tradovate.entities import TvContract
from brokers.tradovate.rest import BadResponse, RestClient


class ContractCache:
    def __init__(self) -> None:
        self._by_id: dict[int, str] = {}
        self._by_name: dict[str, int] = {}

    def learn(self, contracts: tuple[TvContract, ...] | list[TvContract]) -> None:
        for contract in contracts:
            self._by_id[contract.id] = contract.name
            self._by_name[contract.name] = contract.id

    def name_known(self, contract_id: int) -> str | None:
        return self._by_id.get(contract_id)

    def id_known(self, name: str) -> int | None:
        return self._by_name.get(name)

    async def name_of(self, contract_id: int, rest: RestClient) -> str:
        known = self._by_id.get(contract_id)
        if known is not None:
            return known
        contract = await self._fetch(rest, "contract/item", {"id": contract_id})
        return contract.name

    async def id_of(self, name: str, rest: RestClient) -> int:
        known = self._by_name.get(name)
        if known is not None:
            return known
        contract = await self._fetch(rest, "contract/find", {"name": name})
        return contract.id

    async def _fetch(self, rest: RestClient, path: str, params: dict[str, object]) -> TvContract:
        try:
            contract = entities.contract(await rest.get(path, params))
        except entities.EntityError as error:
            raise BadResponse(f"{path}: {error}") from None
        self.learn([contract])
        return contract
