"""The console in a real headless Chromium (Debian's chromium + chromium-driver) against the real
stack: sign in, upload a document and see it ready, ask a test question, connect a number and see
the QR code then CONECTADA, watch a customer's message appear, take over, send as a human (it
reaches Evolution), hand back; another cliente's URLs show nothing.

With CONSOLE_SCREENSHOTS=DIR each page is also saved at desktop (1280) and phone (390) width
(`docs/console/screenshots.sh` regenerates the README's pictures this way)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import evolution_payloads as wa
from tests.support.accounts import MakeAccount
from tests.support.fake_evolution import FakeEvolution
from tests.support.tenants import MakeTenant
from tests.support.waiting import eventually

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 30.0
WIDTHS = {"desktop": 1280, "phone": 390}

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
]

DOC = (
    "# Cardápio\n\n## Pizzas\n\nA pizza margherita custa R$ 42 e a calabresa R$ 45.\n\n"
    "## Entregas\n\nEntregamos em Pinheiros e na Vila Madalena das 18h às 23h."
)

# What a person's drop of two files does: one `drop` event whose DataTransfer holds both.
DROP_TWO_FILES = """
const files = new DataTransfer();
files.items.add(new File(["# Horários\\n\\nAbrimos de terça a domingo, das 18h às 23h."],
                         "horarios.md", {type: "text/markdown"}));
files.items.add(new File(["Pergunta;Resposta\\nTem estacionamento?;Sim, gratuito para clientes."],
                         "perguntas.csv", {type: "text/csv"}));
document.getElementById("dropzone").dispatchEvent(
    new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WIDTHS['desktop']},900",
        "--lang=pt-BR",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


class Page:
    """The browser on the console, with waits on what a person would see."""

    def __init__(self, driver: Any, base_url: str):
        self.driver = driver
        self.base_url = base_url
        self.shots = os.environ.get("CONSOLE_SCREENSHOTS")

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css: str, timeout_s: float = WAIT_S) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout_s).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css))
        )

    def wait_until(self, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(
            self.driver, timeout_s, ignored_exceptions=(StaleElementReferenceException,)
        ).until(lambda _: condition())

    def click(self, css: str) -> None:
        """Click what `css` names, found again if a live refresh replaced it meanwhile."""

        def clicked() -> bool:
            self.find(css).click()
            return True

        self.wait_until(clicked)

    def shoot(self, name: str) -> None:
        """Save the page at each width (only with CONSOLE_SCREENSHOTS)."""
        if not self.shots:
            return
        for label, width in WIDTHS.items():
            metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            metrics["height"] = min(int(height), 2400)  # the whole page, in one picture
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            self.driver.save_screenshot(str(Path(self.shots) / f"{name}-{label}.png"))
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


async def test_a_business_runs_its_whatsapp_from_the_console(
    conversa: Any,
    driver: Any,
    make_tenant: MakeTenant,
    make_account: MakeAccount,
    fake_evolution: FakeEvolution,
) -> None:
    tenant = await make_tenant(nome="Pizzaria Bella", human_pause_s=600)
    account = await make_account(tenant.id)
    page = Page(driver, conversa.base_url)

    # sign in
    page.open("/console/entrar")
    page.shoot("01-entrar")
    page.find("#key").send_keys(account.key)
    page.find("#signin").click()
    page.wait_for("h1")
    assert driver.current_url.endswith("/console/painel")
    assert "Pizzaria Bella" in page.find(".who").text

    # knowledge: upload a document (the file input the drop zone feeds), see it ready
    page.open("/console/conhecimento")
    folder = Path(tempfile.mkdtemp(prefix="console-upload-"))
    try:
        document = folder / "cardapio.md"
        document.write_text(DOC, encoding="utf-8")
        page.find("#files").send_keys(str(document))
        ready = 'tr.document[data-title="cardapio.md"][data-status="PRONTO"]'
        page.wait_for(ready)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    page.wait_until(lambda: "2/2" in page.find(ready).text)
    # two more dropped at once on the drop zone (a drop event carrying two files)
    driver.execute_script(DROP_TWO_FILES)
    for title in ("horarios.md", "perguntas.csv"):
        page.wait_for(f'tr.document[data-title="{title}"][data-status="PRONTO"]')
    assert len(page.all("tr.document")) == 3 and not page.all("li.upload")  # all sent
    page.find("#question").send_keys("vocês entregam na vila madalena?")
    page.find("#ask").click()
    passage = page.wait_for("li.passage")
    assert "Vila Madalena" in passage.text
    page.shoot("03-conhecimento")

    # WhatsApp: connect a number, the QR code shows, then the phone scans it: CONECTADA
    page.open("/console/whatsapp")
    page.find("#number").send_keys("5511955550001")
    page.find("#connect").click()
    qr = page.wait_for('section.instance[data-status="PENDENTE"] img.qr')
    assert driver.execute_script("return arguments[0].naturalWidth", qr) > 0  # a real PNG
    assert page.find("code.pairing").text
    page.shoot("02-whatsapp-qr")
    [provisioned] = [
        i for i in (await account.client.get("/v1/instances")).json() if i["provisioned"]
    ]
    # Evolution makes a new QR code (nobody scanned): the page shows it without a reload
    first_qr = qr.get_attribute("src")
    await fake_evolution.emit_qrcode(provisioned["instance_id"])
    page.wait_until(
        lambda: (
            page.find('section.instance[data-status="PENDENTE"] img.qr').get_attribute("src")
            != first_qr
        )
    )
    await fake_evolution.emit_connection(
        provisioned["instance_id"], state="open", wuid="5511955550001@s.whatsapp.net"
    )
    connected = 'section.instance[data-status="CONECTADA"] .numero'
    page.wait_for(connected)
    page.wait_until(lambda: page.find(connected).text == "5511955550001")
    page.shoot("02-whatsapp-conectada")

    # Conversas: a customer writes; the chat appears in the list by itself
    page.open("/console/conversas")
    chat = wa.new_chat()
    number = chat.split("@")[0]
    posted = await tenant.post(
        wa.text(tenant.instance, chat, "Quanto custa a margherita?", push_name="Joana Cliente")
    )
    assert posted.status_code == 200
    page.wait_for("li.chat")
    page.wait_until(lambda: "Joana Cliente" in page.find("li.chat").text)
    await eventually(lambda: _bot_answered(tenant, chat))
    page.shoot("04-conversas")

    # take over, send as a human, hand back
    page.click("li.chat a")
    page.wait_for('#chat-body[data-state="bot"]')
    page.wait_for(".msg.bot")
    page.click("#pause")
    page.wait_for('#chat-body[data-state="paused_by_operator"]')
    page.find("#human-text").send_keys("Oi Joana, aqui é o Marco da pizzaria!")
    page.click("#send-human")
    page.wait_for('#chat-body[data-state="paused_by_human"] .msg.human')
    sent = await eventually(
        lambda: _sent(fake_evolution, (chat, number), "Oi Joana, aqui é o Marco da pizzaria!")
    )
    assert sent[0].instance == tenant.instance
    page.shoot("05-conversa")
    page.click("#resume")
    page.wait_for('#chat-body[data-state="bot"]')
    conversation = (await account.client.get("/v1/conversations")).json()["items"][0]
    assert conversation["paused_until"] is None

    # settings and dashboard render (the screenshots) with this cliente's data
    page.open("/console/configuracoes")
    page.find("#debounce_s").clear()
    page.find("#debounce_s").send_keys("muito")
    page.find("#save").click()
    assert "error" in page.wait_for("#error-debounce_s").get_attribute("class")
    page.shoot("06-configuracoes")
    page.open("/console/painel")
    page.wait_for("#billing-status")
    assert len(page.all(".chart svg rect")) == 4 * 30
    page.shoot("07-painel")


async def _bot_answered(tenant: Any, chat: str) -> bool:
    return any(m["author"] == "bot" for m in await tenant.messages(chat))


async def _sent(fake: FakeEvolution, numbers: tuple[str, ...], text: str) -> list[Any]:
    return [s for s in fake.sent if s.number in numbers and s.text == text]


async def test_a_clientes_browser_never_shows_another_clientes_chat(
    conversa: Any, driver: Any, make_tenant: MakeTenant, make_account: MakeAccount
) -> None:
    victim = await make_tenant()
    chat = wa.new_chat()
    assert (await victim.post(wa.text(victim.instance, chat, "dados sigilosos"))).status_code == 200
    conversation = await eventually(lambda: _conversation_of(victim, chat))
    intruder = await make_account((await make_tenant()).id)
    page = Page(driver, conversa.base_url)
    page.open("/console/entrar")
    if page.all("#signout"):  # still signed in from the previous test
        page.find("#signout").click()
        page.wait_for("#key")
    page.find("#key").send_keys(intruder.key)
    page.find("#signin").click()
    page.wait_for("h1")
    page.open(f"/console/conversas/{conversation['id']}")
    error = page.wait_for(".error")
    assert error.get_attribute("data-status") == "404"
    assert "dados sigilosos" not in driver.page_source
    page.open("/console/conversas")
    page.wait_for("#chats")
    assert "dados sigilosos" not in driver.page_source and not page.all("li.chat")


async def _conversation_of(tenant: Any, chat: str) -> dict[str, Any] | None:
    return next((c for c in await tenant.conversations() if c["chat_jid"] == chat), None)
