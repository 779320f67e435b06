"""WhatsApp payload rules (engine/whatsapp.py) on `data` objects shaped as Evolution v2 sends them.

Shapes follow shared/reference/evolution-api.md §2.2-2.5 (sample bodies A-E).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from engine.core.whatsapp import (
    MAX_MESSAGE_TYPE_CHARS,
    MAX_PUSH_NAME_CHARS,
    MAX_TIMESTAMP_S,
    Classified,
    CustomerText,
    HumanTakeover,
    Ignored,
    canonical_chat_jid,
    classify_upsert,
    decode_body,
    event_path_to_name,
    is_jid,
    jid_kind_to_ignore,
    mentions,
    normalize_event_name,
    numero_of,
    storable_text,
)
from engine.errors import InvalidJson, MalformedWebhook

PHONE = "5511987654321@s.whatsapp.net"
PHONE_2 = "5521998877665@s.whatsapp.net"
LID = "123456789012345@lid"
LID_2 = "198765432109876@lid"
GROUP = "120363041234567890@g.us"
KEY_ID = "A5561E44C2A63682E4295B52F484C14E"
TS = 1761060000
INSTANCE_ID = "4f0c2a7e-9a61-4c1e-8d0e-2b9f6a3c1d22"
CONTEXT_INFO = {
    "deviceListMetadata": {"senderTimestamp": "1760990000", "recipientTimestamp": "1761000000"},
    "deviceListMetadataVersion": 2,
    "messageSecret": {"0": 12, "1": 34, "2": 56},
}
AUDIO = {
    "url": "https://mmg.whatsapp.net/v/t62.7117-24/audio.enc?ccb=11-4",
    "mimetype": "audio/ogg; codecs=opus",
    "fileLength": {"low": 18233, "high": 0, "unsigned": True},
    "seconds": 7,
    "ptt": True,
    "mediaKey": {"0": 1, "1": 2},
}
RECEIVED_AT_S = 1761060099  # the server's clock when the webhook arrived
_DEFAULT = object()


def classify(data: Any) -> Classified:
    """`classify_upsert` as the inbox calls it, with the server clock at `RECEIVED_AT_S`."""
    return classify_upsert(data, received_at_s=RECEIVED_AT_S)


def upsert_data(
    message: Any = _DEFAULT,
    *,
    remote_jid: str = PHONE,
    from_me: bool = False,
    key_id: str = KEY_ID,
    key_extra: dict[str, Any] | None = None,
    message_type: str | None = "conversation",
    timestamp: Any = TS,
    push_name: Any = "Maria Souza",
) -> dict[str, Any]:
    """The `data` of a `messages.upsert` webhook (sample A by default)."""
    data: dict[str, Any] = {
        "key": {"remoteJid": remote_jid, "fromMe": from_me, "id": key_id, **(key_extra or {})},
        "pushName": push_name,
        "status": "SERVER_ACK" if from_me else "DELIVERY_ACK",
        "message": (
            {"conversation": "Oi, vocês abrem amanhã?", "messageContextInfo": CONTEXT_INFO}
            if message is _DEFAULT
            else message
        ),
        "messageTimestamp": timestamp,
        "instanceId": INSTANCE_ID,
        "source": "android",
    }
    if message_type is not None:
        data["messageType"] = message_type
    return data


# --------------------------------------------------------------------------- customer text


def test_sample_a_private_text_is_a_customer_text_with_every_field() -> None:
    data = upsert_data(key_extra={"remoteJidAlt": LID_2, "addressingMode": "pn"})

    assert classify(data) == CustomerText(
        key_id=KEY_ID,
        chat_jid=PHONE,
        remote_jid=PHONE,
        text="Oi, vocês abrem amanhã?",
        message_type="conversation",
        timestamp=TS,
        push_name="Maria Souza",
    )


CUSTOMER_TEXT_CASES = [
    pytest.param(
        {"conversation": "Vocês entregam no sábado?"},
        "conversation",
        "Vocês entregam no sábado?",
        id="conversation",
    ),
    pytest.param(
        {
            "extendedTextMessage": {
                "text": "Quero o plano anual, como pago?",
                "contextInfo": {
                    "stanzaId": "3EB0C431C5A2F8E1D9A7B2",
                    "quotedMessage": {"conversation": "Temos os planos mensal e anual."},
                },
            },
            "messageContextInfo": CONTEXT_INFO,
        },
        "extendedTextMessage",
        "Quero o plano anual, como pago?",
        id="extendedTextMessage",
    ),
    pytest.param(
        {
            "imageMessage": {
                "url": "https://mmg.whatsapp.net/o1/v/t62.7118-24/f1/m232/image?ccb=9-4",
                "mimetype": "image/jpeg",
                "caption": "Segue o comprovante",
                "fileLength": "184233",
                "height": 1280,
                "width": 960,
                "jpegThumbnail": {"0": 255, "1": 216},
            },
            "base64": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U",
        },
        "imageMessage",
        "Segue o comprovante",
        id="image-caption",
    ),
    pytest.param(
        {
            "videoMessage": {
                "url": "https://mmg.whatsapp.net/v/t62.7161-24/video.enc",
                "mimetype": "video/mp4",
                "caption": "O produto chegou assim, quebrado",
                "seconds": 12,
            }
        },
        "videoMessage",
        "O produto chegou assim, quebrado",
        id="video-caption",
    ),
    pytest.param(
        {
            "documentMessage": {
                "url": "https://mmg.whatsapp.net/v/t62.7119-24/doc.enc",
                "mimetype": "application/pdf",
                "fileName": "nota-fiscal.pdf",
                "caption": "Minha nota fiscal",
            }
        },
        "documentMessage",
        "Minha nota fiscal",
        id="document-caption",
    ),
    pytest.param(
        {
            "documentWithCaptionMessage": {
                "message": {
                    "documentMessage": {
                        "mimetype": "application/pdf",
                        "fileName": "contrato.pdf",
                        "caption": "Contrato assinado",
                    }
                }
            },
            "messageContextInfo": CONTEXT_INFO,
        },
        "documentWithCaptionMessage",
        "Contrato assinado",
        id="documentWithCaptionMessage",
    ),
    pytest.param(
        {
            "ephemeralMessage": {
                "message": {"extendedTextMessage": {"text": "Qual o prazo de entrega?"}}
            }
        },
        "ephemeralMessage",
        "Qual o prazo de entrega?",
        id="ephemeralMessage",
    ),
    pytest.param(
        {
            "viewOnceMessage": {
                "message": {"imageMessage": {"mimetype": "image/jpeg", "caption": "Esse modelo"}}
            }
        },
        "viewOnceMessage",
        "Esse modelo",
        id="viewOnceMessage",
    ),
    pytest.param(
        {
            "viewOnceMessageV2": {
                "message": {"videoMessage": {"mimetype": "video/mp4", "caption": "Olha o defeito"}}
            }
        },
        "viewOnceMessageV2",
        "Olha o defeito",
        id="viewOnceMessageV2",
    ),
    pytest.param(
        {
            "ephemeralMessage": {
                "message": {
                    "viewOnceMessageV2": {
                        "message": {"imageMessage": {"caption": "Foto do pedido 4411"}}
                    }
                }
            }
        },
        "ephemeralMessage",
        "Foto do pedido 4411",
        id="ephemeral>viewOnceV2>image",
    ),
    pytest.param(
        {
            "ephemeralMessage": {
                "message": {
                    "documentWithCaptionMessage": {
                        "message": {"documentMessage": {"caption": "Boleto de outubro"}}
                    },
                    "messageContextInfo": CONTEXT_INFO,
                }
            }
        },
        "ephemeralMessage",
        "Boleto de outubro",
        id="ephemeral>documentWithCaption>document",
    ),
    pytest.param(
        {
            "ephemeralMessage": {
                "message": {
                    "viewOnceMessage": {
                        "message": {
                            "documentWithCaptionMessage": {
                                "message": {"documentMessage": {"caption": "Três níveis"}}
                            }
                        }
                    }
                }
            }
        },
        "ephemeralMessage",
        "Três níveis",
        id="ephemeral>viewOnce>documentWithCaption>document",
    ),
    pytest.param(
        {
            "buttonsResponseMessage": {
                "selectedButtonId": "btn_horario",
                "selectedDisplayText": "Horário de funcionamento",
                "contextInfo": {"stanzaId": "3EB0AABBCCDD"},
            }
        },
        "buttonsResponseMessage",
        "Horário de funcionamento",
        id="buttonsResponseMessage",
    ),
    pytest.param(
        {
            "templateButtonReplyMessage": {
                "selectedId": "falar_atendente",
                "selectedDisplayText": "Falar com atendente",
                "selectedIndex": 0,
            }
        },
        "templateButtonReplyMessage",
        "Falar com atendente",
        id="templateButtonReplyMessage",
    ),
    pytest.param(
        {
            "listResponseMessage": {
                "title": "Plano anual",
                "listType": "SINGLE_SELECT",
                "singleSelectReply": {"selectedRowId": "plano_anual"},
                "description": "R$ 999 por ano",
            }
        },
        "listResponseMessage",
        "Plano anual",
        id="listResponseMessage",
    ),
    pytest.param(
        {"audioMessage": AUDIO, "speechToText": "[audio] Qual o prazo de entrega para Campinas?"},
        "audioMessage",
        "[audio] Qual o prazo de entrega para Campinas?",
        id="audio-speechToText",
    ),
]


@pytest.mark.parametrize(("message", "message_type", "text"), CUSTOMER_TEXT_CASES)
def test_customer_text_is_found_in_every_supported_message_shape(
    message: dict[str, Any], message_type: str, text: str
) -> None:
    result = classify(upsert_data(message, message_type=message_type))

    assert isinstance(result, CustomerText)
    assert result.text == text
    assert result.message_type == _innermost_kind(message)  # wrappers say nothing of content
    assert result.chat_jid == PHONE
    assert result.key_id == KEY_ID


def _innermost_kind(message: dict[str, Any]) -> str:
    wrappers = (
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
    )
    while True:
        wrapper = next((w for w in wrappers if w in message), None)
        if wrapper is None:
            return next(k for k in message if k != "messageContextInfo")
        message = message[wrapper]["message"]


def test_customer_text_is_stripped_of_surrounding_whitespace() -> None:
    result = classify(upsert_data({"conversation": "  \n Oi, tudo bem? \t\n"}))

    assert isinstance(result, CustomerText)
    assert result.text == "Oi, tudo bem?"


def test_message_type_falls_back_to_the_content_key_ignoring_metadata_keys() -> None:
    message = {
        "messageContextInfo": CONTEXT_INFO,
        "base64": "/9j/4AAQSkZJRg",
        "mediaUrl": "https://s3.example.com/bucket/image.jpg",
        "imageMessage": {"mimetype": "image/jpeg", "caption": "Segue o comprovante"},
    }

    result = classify(upsert_data(message, message_type=None))

    assert isinstance(result, CustomerText)
    assert result.message_type == "imageMessage"


def test_message_type_of_a_wrapped_message_without_message_type_is_the_inner_content_key() -> None:
    message = {"ephemeralMessage": {"message": {"extendedTextMessage": {"text": "Oi"}}}}

    result = classify(upsert_data(message, message_type=None))

    assert isinstance(result, CustomerText)
    assert result.message_type == "extendedTextMessage"


@pytest.mark.parametrize("push_name", [None, 42, {"name": "Maria"}], ids=["none", "int", "dict"])
def test_push_name_that_is_not_a_string_becomes_none(push_name: Any) -> None:
    result = classify(upsert_data(push_name=push_name))

    assert isinstance(result, CustomerText)
    assert result.push_name is None


# --------------------------------------------------------------------------- media and empty

MEDIA_CASES = [
    pytest.param({"audioMessage": AUDIO}, "audioMessage", "audioMessage", id="audio"),
    pytest.param(
        {"messageContextInfo": CONTEXT_INFO, "audioMessage": AUDIO, "base64": "T2dnUw=="},
        "audioMessage",
        "audioMessage",
        id="audio-with-metadata-first",
    ),
    pytest.param({"audioMessage": AUDIO}, "unknown", "audioMessage", id="audio-type-unknown"),
    pytest.param(
        {"viewOnceMessageV2Extension": {"message": {"audioMessage": AUDIO}}},
        "viewOnceMessageV2Extension",
        "audioMessage",
        id="view-once-voice-note",
    ),
    pytest.param(
        {"stickerMessage": {"mimetype": "image/webp", "isAnimated": False}},
        "stickerMessage",
        "stickerMessage",
        id="sticker",
    ),
    pytest.param(
        {"locationMessage": {"degreesLatitude": -23.5505, "degreesLongitude": -46.6333}},
        "locationMessage",
        "locationMessage",
        id="location",
    ),
    pytest.param(
        {"imageMessage": {"mimetype": "image/jpeg", "height": 1280, "width": 960}},
        "imageMessage",
        "imageMessage",
        id="image-without-caption",
    ),
]


@pytest.mark.parametrize(("message", "message_type", "kind"), MEDIA_CASES)
def test_media_without_text_is_a_customer_message_marked_as_media(
    message: Any, message_type: str, kind: str
) -> None:
    result = classify(upsert_data(message, message_type=message_type))

    assert isinstance(result, CustomerText)
    assert (result.text, result.media, result.message_type) == ("", True, kind)
    assert "unknown" not in result.message_type


def test_image_with_caption_is_media_with_text() -> None:
    result = classify(upsert_data({"imageMessage": {"caption": "Segue o comprovante"}}))

    assert isinstance(result, CustomerText)
    assert (result.text, result.media) == ("Segue o comprovante", True)


EMPTY_CASES = [
    pytest.param({"conversation": "   \n  "}, "conversation", id="blank-text"),
    pytest.param({}, "unknown", id="empty-message-unknown-type"),
    pytest.param(None, "unknown", id="message-null"),
    pytest.param({"messageContextInfo": CONTEXT_INFO}, "unknown", id="only-metadata"),
]


@pytest.mark.parametrize(("message", "message_type"), EMPTY_CASES)
def test_messages_with_no_content_are_ignored_as_empty(message: Any, message_type: str) -> None:
    result = classify(upsert_data(message, message_type=message_type))

    assert result == Ignored(KEY_ID, "empty", PHONE)


def test_message_key_missing_entirely_is_ignored_as_empty() -> None:
    data = upsert_data()
    del data["message"]

    assert classify(data) == Ignored(KEY_ID, "empty", PHONE)


# --------------------------------------------------------------------------- chat kinds

CHAT_KIND_CASES = [
    pytest.param("status@broadcast", "status_broadcast", id="status"),
    pytest.param("1761060000@broadcast", "broadcast", id="broadcast-list"),
    pytest.param("120363198765432101@newsletter", "newsletter", id="newsletter"),
]
GROUPS = [GROUP, "5511999999999-1592345678@g.us"]


@pytest.mark.parametrize(("remote_jid", "reason"), CHAT_KIND_CASES)
def test_messages_in_broadcasts_and_newsletters_are_ignored(remote_jid: str, reason: str) -> None:
    data = upsert_data({"conversation": "novidades da semana"}, remote_jid=remote_jid)

    assert classify(data) == Ignored(KEY_ID, reason, remote_jid)


@pytest.mark.parametrize("remote_jid", [*GROUPS, *(p.values[0] for p in CHAT_KIND_CASES)])
def test_own_messages_in_non_private_chats_are_ignored_not_a_takeover(remote_jid: str) -> None:
    data = upsert_data({"conversation": "Bom dia, grupo!"}, remote_jid=remote_jid, from_me=True)

    result = classify(data)

    assert isinstance(result, Ignored)
    assert result.chat_jid == remote_jid


@pytest.mark.parametrize("remote_jid", GROUPS)
def test_group_message_carries_who_wrote_and_whom_they_mentioned(remote_jid: str) -> None:
    data = upsert_data(
        {"conversation": "@102938475610293 qual o horário de sábado?"},
        remote_jid=remote_jid,
        key_extra={"participant": LID_2, "participantAlt": PHONE_2, "addressingMode": "lid"},
    )
    data["contextInfo"] = {"mentionedJid": ["102938475610293@lid"]}

    result = classify(data)

    assert isinstance(result, CustomerText)
    assert result.chat_jid == remote_jid  # the group is the conversation
    assert result.text == "qual o horário de sábado?"  # the mention token is not the question
    assert result.group is not None
    assert result.group.participant == PHONE_2
    assert result.group.mentioned_jids == ("102938475610293@lid",)
    assert mentions(result.group, {"102938475610293@lid"})
    assert not mentions(result.group, {"5511912345678@s.whatsapp.net"})


def test_group_reply_to_the_business_counts_as_a_mention() -> None:
    owner = "5511912345678@s.whatsapp.net"
    data = upsert_data({"conversation": "e no domingo?"}, remote_jid=GROUP)
    data["contextInfo"] = {"participant": owner, "quotedMessage": {"conversation": "Sábado 9h"}}

    result = classify(data)

    assert isinstance(result, CustomerText) and result.group is not None
    assert mentions(result.group, {owner})


def test_group_message_without_text_is_ignored() -> None:
    data = upsert_data({"stickerMessage": {"mimetype": "image/webp"}}, remote_jid=GROUP)

    assert classify(data) == Ignored(KEY_ID, "group", GROUP)


# --------------------------------------------------------------------------- ignored: kinds

IGNORED_KIND_CASES = [
    pytest.param(
        {
            "reactionMessage": {
                "key": {"remoteJid": PHONE, "fromMe": True, "id": "3EB0C431C5A2F8E1D9A7B2"},
                "text": "👍",
                "senderTimestampMs": {"low": 1191460160, "high": 409, "unsigned": False},
            }
        },
        "reactionMessage",
        "reaction",
        id="reaction",
    ),
    pytest.param(
        {
            "messageContextInfo": CONTEXT_INFO,
            "reactionMessage": {"key": {"id": "3EB0C431C5A2F8E1D9A7B2"}, "text": "❤️"},
        },
        "reactionMessage",
        "reaction",
        id="reaction-after-metadata",
    ),
    pytest.param(
        {"ephemeralMessage": {"message": {"reactionMessage": {"key": {}, "text": "😂"}}}},
        "ephemeralMessage",
        "reaction",
        id="ephemeral-reaction",
    ),
    pytest.param(
        {"protocolMessage": {"key": {"remoteJid": PHONE, "id": "3EB0AA"}, "type": "REVOKE"}},
        "protocolMessage",
        "protocol",
        id="protocol-revoke",
    ),
    pytest.param(
        {
            "ephemeralMessage": {
                "message": {
                    "protocolMessage": {"type": "EPHEMERAL_SETTING", "ephemeralExpiration": 604800}
                }
            }
        },
        "ephemeralMessage",
        "protocol",
        id="ephemeral-setting",
    ),
    pytest.param(
        {
            "editedMessage": {
                "message": {
                    "protocolMessage": {
                        "key": {"remoteJid": PHONE, "fromMe": False, "id": "3EB0BB"},
                        "type": "MESSAGE_EDIT",
                        "editedMessage": {"conversation": "Quero o plano mensal, na verdade"},
                    }
                }
            }
        },
        "editedMessage",
        "edited",
        id="edited",
    ),
    pytest.param(
        {
            "pollUpdateMessage": {
                "pollCreationMessageKey": {"remoteJid": PHONE, "fromMe": True, "id": "3EB0CC"},
                "vote": {"selectedOptions": ["Sim"]},
                "senderTimestampMs": "1761060000123",
            }
        },
        "pollUpdateMessage",
        "poll_update",
        id="poll-update",
    ),
]


@pytest.mark.parametrize(("message", "message_type", "reason"), IGNORED_KIND_CASES)
def test_reactions_protocol_edits_and_poll_votes_are_ignored(
    message: dict[str, Any], message_type: str, reason: str
) -> None:
    result = classify(upsert_data(message, message_type=message_type))

    assert result == Ignored(KEY_ID, reason, PHONE)


def test_ignored_reaction_in_a_lid_chat_is_keyed_by_the_phone_number() -> None:
    data = upsert_data(
        {"reactionMessage": {"key": {"id": "3EB0"}, "text": "👍"}},
        remote_jid=LID,
        key_extra={"remoteJidAlt": PHONE_2, "addressingMode": "lid"},
        message_type="reactionMessage",
    )

    assert classify(data) == Ignored(KEY_ID, "reaction", PHONE_2)


# --------------------------------------------------------------------------- human takeover


def test_sample_d_message_typed_on_the_business_phone_is_a_human_takeover_with_its_text() -> None:
    data = upsert_data(
        {"conversation": "Oi Maria, aqui é a Carla, vou te ajudar."},
        from_me=True,
        key_id="3A1B2C3D4E5F60718293",
        key_extra={"addressingMode": "pn"},
        timestamp=1761060400,
        push_name="Loja Centro",
    )

    assert classify(data) == HumanTakeover(
        key_id="3A1B2C3D4E5F60718293",
        chat_jid=PHONE,
        remote_jid=PHONE,
        text="Oi Maria, aqui é a Carla, vou te ajudar.",
        timestamp=1761060400,
    )


@pytest.mark.parametrize(
    ("message", "text"),
    [
        pytest.param({"conversation": "  Já te respondo!  "}, "Já te respondo!", id="text"),
        pytest.param(
            {"extendedTextMessage": {"text": "Segue o link do pedido"}},
            "Segue o link do pedido",
            id="extended",
        ),
        pytest.param(
            {"imageMessage": {"mimetype": "image/jpeg", "caption": "Tabela de preços"}},
            "Tabela de preços",
            id="image-caption",
        ),
        pytest.param(
            {"ephemeralMessage": {"message": {"conversation": "Pode deixar"}}},
            "Pode deixar",
            id="ephemeral",
        ),
        pytest.param({"audioMessage": AUDIO}, "", id="voice-note-without-text"),
    ],
)
def test_own_messages_are_a_human_takeover_carrying_their_text(
    message: dict[str, Any], text: str
) -> None:
    result = classify(upsert_data(message, from_me=True))

    assert isinstance(result, HumanTakeover)
    assert result.text == text
    assert result.chat_jid == PHONE
    assert result.timestamp == TS


def test_takeover_in_a_lid_chat_is_keyed_by_the_phone_number() -> None:
    data = upsert_data(
        {"conversation": "Oi João, aqui é o Pedro."},
        remote_jid=LID,
        from_me=True,
        key_extra={"remoteJidAlt": PHONE_2, "addressingMode": "lid"},
    )

    result = classify(data)

    assert isinstance(result, HumanTakeover)
    assert result.chat_jid == PHONE_2
    assert result.remote_jid == LID


@pytest.mark.parametrize("from_me", ["true", 1, None], ids=["string", "int", "null"])
def test_only_a_literal_true_from_me_is_a_takeover(from_me: Any) -> None:
    data = upsert_data()
    data["key"]["fromMe"] = from_me

    assert isinstance(classify(data), CustomerText)


# --------------------------------------------------------------------------- JID forms


def test_lid_chat_is_keyed_by_the_phone_number() -> None:
    """Sample B (2.3.5-2.3.6): remoteJid is the @lid, remoteJidAlt the phone JID."""
    data = upsert_data(
        {"conversation": "Quero o plano anual, como pago?"},
        remote_jid=LID,
        key_id="3A7F2C9B41D08E5A6B1C",
        key_extra={"remoteJidAlt": PHONE_2, "addressingMode": "lid"},
        push_name="João",
    )

    result = classify(data)

    assert isinstance(result, CustomerText)
    assert result.chat_jid == PHONE_2
    assert result.remote_jid == LID


@pytest.mark.parametrize(
    ("key_extra", "remote_jid"),
    [
        pytest.param({"remoteJidAlt": LID, "addressingMode": "pn"}, PHONE_2, id="alt-is-lid"),
        pytest.param({"remoteJidAlt": PHONE_2, "addressingMode": "lid"}, PHONE_2, id="2.3.7"),
        pytest.param(
            {"previousRemoteJid": LID, "senderPn": PHONE_2, "senderLid": LID},
            PHONE_2,
            id="2.3.1-2.3.4-swapped",
        ),
    ],
)
def test_phone_remote_jid_is_the_chat_whatever_the_alt_holds(
    key_extra: dict[str, Any], remote_jid: str
) -> None:
    result = classify(upsert_data(remote_jid=remote_jid, key_extra=key_extra))

    assert isinstance(result, CustomerText)
    assert result.chat_jid == PHONE_2
    assert result.remote_jid == PHONE_2


def test_lid_and_phone_forms_of_one_contact_share_a_chat() -> None:
    as_lid = upsert_data(remote_jid=LID, key_extra={"remoteJidAlt": PHONE_2})
    as_phone = upsert_data(remote_jid=PHONE_2, key_extra={"remoteJidAlt": LID})
    as_sender_pn = upsert_data(remote_jid=LID, key_extra={"senderPn": PHONE_2})

    chats = {classify(d).chat_jid for d in (as_lid, as_phone, as_sender_pn)}

    assert chats == {PHONE_2}


@pytest.mark.parametrize(
    "key_extra",
    [
        pytest.param({}, id="no-alt"),
        pytest.param({"remoteJidAlt": None}, id="alt-null"),
        pytest.param({"remoteJidAlt": LID_2, "addressingMode": "lid"}, id="alt-also-lid"),
    ],
)
def test_lid_without_a_phone_alt_is_kept_as_the_chat(key_extra: dict[str, Any]) -> None:
    result = classify(upsert_data(remote_jid=LID, key_extra=key_extra))

    assert isinstance(result, CustomerText)
    assert result.chat_jid == LID
    assert result.remote_jid == LID


def test_device_suffix_is_stripped_from_the_chat_but_not_from_the_remote_jid() -> None:
    result = classify(upsert_data(remote_jid="5511987654321:12@s.whatsapp.net"))

    assert isinstance(result, CustomerText)
    assert result.chat_jid == PHONE
    assert result.remote_jid == "5511987654321:12@s.whatsapp.net"


def test_device_suffix_is_stripped_from_a_phone_alt() -> None:
    data = upsert_data(remote_jid=LID, key_extra={"remoteJidAlt": "5521998877665:7@s.whatsapp.net"})

    assert classify(data).chat_jid == PHONE_2


CANONICAL_CASES = [
    pytest.param({"remoteJid": PHONE}, PHONE, id="phone"),
    pytest.param({"remoteJid": "5511987654321:3@s.whatsapp.net"}, PHONE, id="phone-device"),
    pytest.param({"remoteJid": LID, "remoteJidAlt": PHONE}, PHONE, id="lid+alt-phone"),
    pytest.param({"remoteJid": PHONE, "remoteJidAlt": LID}, PHONE, id="phone+alt-lid"),
    pytest.param({"remoteJid": LID, "senderPn": PHONE}, PHONE, id="lid+senderPn"),
    pytest.param(
        {"remoteJid": LID, "remoteJidAlt": LID_2, "senderPn": PHONE}, PHONE, id="senderPn-wins-lid"
    ),
    pytest.param({"remoteJid": LID}, LID, id="lid-alone"),
    pytest.param({"remoteJid": "123456789012345:4@lid"}, LID, id="lid-device"),
    pytest.param({"remoteJid": LID, "remoteJidAlt": 5511987654321}, LID, id="alt-not-a-string"),
    pytest.param({}, "", id="empty-key"),
]


@pytest.mark.parametrize(("key", "expected"), CANONICAL_CASES)
def test_canonical_chat_jid_prefers_the_phone_jid(key: dict[str, Any], expected: str) -> None:
    assert canonical_chat_jid(key) == expected


NUMERO_CASES = [
    pytest.param(PHONE, "5511987654321", id="phone"),
    pytest.param("5511987654321:12@s.whatsapp.net", "5511987654321", id="device-suffix"),
    pytest.param(LID, None, id="lid"),
    pytest.param(GROUP, None, id="group"),
    pytest.param("status@broadcast", None, id="status"),
    pytest.param("abc@s.whatsapp.net", None, id="not-digits"),
    pytest.param("+5511987654321@s.whatsapp.net", None, id="plus-sign"),
    pytest.param("@s.whatsapp.net", None, id="no-user"),
    pytest.param("5511987654321", None, id="bare-number"),
    pytest.param("", None, id="empty"),
    pytest.param(None, None, id="none"),
]


@pytest.mark.parametrize(("jid", "expected"), NUMERO_CASES)
def test_numero_of_gives_the_digits_of_a_phone_jid_only(jid: str | None, expected: str | None):
    assert numero_of(jid) == expected


JID_KIND_CASES = [
    pytest.param(PHONE, None, id="phone"),
    pytest.param(LID, None, id="lid"),
    pytest.param(GROUP, "group", id="group"),
    pytest.param("status@broadcast", "status_broadcast", id="status"),
    pytest.param("1761060000@broadcast", "broadcast", id="broadcast"),
    pytest.param("120363198765432101@newsletter", "newsletter", id="newsletter"),
]


@pytest.mark.parametrize(("jid", "expected"), JID_KIND_CASES)
def test_jid_kind_to_ignore_names_every_non_private_chat(jid: str, expected: str | None) -> None:
    assert jid_kind_to_ignore(jid) == expected


# --------------------------------------------------------------------------- timestamps

TIMESTAMP_CASES = [
    pytest.param(1761060000, 1761060000, id="int"),
    pytest.param("1761060000", 1761060000, id="numeric-string"),
    pytest.param(" 1761060000 ", 1761060000, id="numeric-string-padded"),
    pytest.param(1761060000.0, 1761060000, id="float"),
    pytest.param(1761060000.9, 1761060000, id="float-truncated"),
    pytest.param({"low": 1761060000, "high": 0, "unsigned": False}, 1761060000, id="long"),
    pytest.param({"low": 1761060000, "high": 0, "unsigned": True}, 1761060000, id="long-unsigned"),
    pytest.param({"low": 1761060000}, 1761060000, id="long-without-high"),
    pytest.param({"low": 1761060000, "high": None}, 1761060000, id="long-high-null"),
    # After 2038 the low word of a signed protobuf Long is negative.
    pytest.param({"low": 2200000000 - 2**32, "high": 0}, 2200000000, id="long-negative-low"),
    pytest.param({"low": 5, "high": 1}, 2**32 + 5, id="long-high-word"),
    pytest.param(0, 0, id="zero"),
]


@pytest.mark.parametrize(("value", "expected"), TIMESTAMP_CASES)
def test_message_timestamp_is_read_as_epoch_seconds_in_every_encoding(
    value: Any, expected: int
) -> None:
    result = classify(upsert_data(timestamp=value))

    assert isinstance(result, CustomerText)
    assert result.timestamp == expected
    assert type(result.timestamp) is int


def test_takeover_timestamp_is_parsed_from_a_protobuf_long() -> None:
    data = upsert_data(from_me=True, timestamp={"low": 1761060400, "high": 0, "unsigned": True})

    result = classify(data)

    assert isinstance(result, HumanTakeover)
    assert result.timestamp == 1761060400


# --------------------------------------------------------------------------- malformed


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    data = upsert_data()
    target: dict[str, Any] = data
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return data


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = upsert_data()
    target: dict[str, Any] = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


MALFORMED_CASES = [
    pytest.param(None, "data", id="data-null"),
    pytest.param([upsert_data()], "data", id="data-list"),
    pytest.param("messages.upsert", "data", id="data-string"),
    pytest.param(42, "data", id="data-int"),
    pytest.param(_without(("key",)), "key", id="key-missing"),
    pytest.param(_with(("key",), None), "key", id="key-null"),
    pytest.param(_with(("key",), "A5561E44"), "key", id="key-string"),
    pytest.param(_without(("key", "id")), "key.id", id="key-id-missing"),
    pytest.param(_with(("key", "id"), ""), "key.id", id="key-id-empty"),
    pytest.param(_with(("key", "id"), None), "key.id", id="key-id-null"),
    pytest.param(_with(("key", "id"), 12345), "key.id", id="key-id-int"),
    pytest.param(_without(("key", "remoteJid")), "remoteJid", id="remoteJid-missing"),
    pytest.param(_with(("key", "remoteJid"), ""), "remoteJid", id="remoteJid-empty"),
    pytest.param(_with(("key", "remoteJid"), "5511987654321"), "remoteJid", id="remoteJid-no-at"),
    pytest.param(_with(("key", "remoteJid"), 5511987654321), "remoteJid", id="remoteJid-int"),
    pytest.param(_with(("message",), "Oi"), "message", id="message-string"),
    pytest.param(_with(("message",), ["Oi"]), "message", id="message-list"),
    pytest.param(_with(("message",), 0), "message", id="message-zero"),
    pytest.param(_with(("messageTimestamp",), ""), "messageTimestamp", id="timestamp-empty"),
    pytest.param(_with(("messageTimestamp",), "ontem"), "messageTimestamp", id="timestamp-word"),
    pytest.param(_with(("messageTimestamp",), "-5"), "messageTimestamp", id="timestamp-signed-str"),
    pytest.param(_with(("messageTimestamp",), [TS]), "messageTimestamp", id="timestamp-list"),
    pytest.param(
        _with(("messageTimestamp",), {"high": 0}), "messageTimestamp", id="timestamp-long-no-low"
    ),
    pytest.param(
        _with(("messageTimestamp",), {"low": "1761060000", "high": 0}),
        "messageTimestamp",
        id="timestamp-long-string-low",
    ),
    pytest.param(_with(("messageTimestamp",), True), "messageTimestamp", id="timestamp-true"),
    pytest.param(_with(("messageTimestamp",), False), "messageTimestamp", id="timestamp-false"),
    # Issue 7 point 8: inputs that used to crash the webhook (500) are refused with a reason.
    pytest.param(_with(("messageTimestamp",), 1e300), "messageTimestamp", id="timestamp-1e300"),
    pytest.param(
        _with(("messageTimestamp",), "9" * 5000), "messageTimestamp", id="timestamp-5000-digits"
    ),
    pytest.param(_with(("messageTimestamp",), 10**30), "messageTimestamp", id="timestamp-huge-int"),
    pytest.param(_with(("messageTimestamp",), -1), "messageTimestamp", id="timestamp-negative"),
    pytest.param(
        _with(("messageTimestamp",), {"low": 0, "high": 2**40}),
        "messageTimestamp",
        id="timestamp-long-huge-high",
    ),
    pytest.param(_with(("key", "id"), "A" * 101), "key.id", id="key-id-101-chars"),
    pytest.param(_with(("key", "id"), "A5561E\x00"), "key.id", id="key-id-nul"),
    pytest.param(_with(("key", "id"), "A5561E \u00e7"), "key.id", id="key-id-not-ascii"),
    pytest.param(_with(("key", "id"), "\ud800"), "key.id", id="key-id-lone-surrogate"),
    pytest.param(
        _with(("key", "remoteJid"), "5" * 200 + "@s.whatsapp.net"), "remoteJid", id="jid-too-long"
    ),
    pytest.param(
        _with(("key", "remoteJid"), "5511987654321@s.whatsapp.net\x00"), "remoteJid", id="jid-nul"
    ),
    pytest.param(_with(("key", "remoteJid"), "a b@lid"), "remoteJid", id="jid-space"),
]


@pytest.mark.parametrize(("data", "field"), MALFORMED_CASES)
def test_malformed_upsert_data_raises_malformed_webhook_naming_the_field(
    data: Any, field: str
) -> None:
    with pytest.raises(MalformedWebhook) as caught:
        classify(data)

    assert field in str(caught.value)


def test_malformed_webhook_is_raised_before_a_group_is_ignored() -> None:
    """A group message with an unusable key is malformed, not silently ignored."""
    data = upsert_data(remote_jid=GROUP)
    data["key"]["id"] = ""

    with pytest.raises(MalformedWebhook):
        classify(data)


# JSON from Python's json.loads (which serve_app/webhooks.py uses) accepts NaN and Infinity, so
# these values can reach classify_upsert straight from a webhook body.
UNPARSEABLE_TIMESTAMPS = [
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="infinity"),
    pytest.param(-math.inf, id="minus-infinity"),
    pytest.param("¹²³", id="superscript-digits"),
    pytest.param({"low": 1761060000, "high": "x"}, id="long-high-not-a-number"),
    pytest.param({"low": 1761060000, "high": [0]}, id="long-high-list"),
]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_without(("messageTimestamp",)), id="missing"),
        pytest.param(_with(("messageTimestamp",), None), id="null"),
    ],
)
def test_missing_timestamp_is_the_time_the_webhook_arrived(data: dict[str, Any]) -> None:
    """Issue 7 point 8: the message used to be refused (422) and lost."""
    result = classify(data)

    assert isinstance(result, CustomerText)
    assert result.timestamp == RECEIVED_AT_S


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(MAX_TIMESTAMP_S, MAX_TIMESTAMP_S, id="year-9999"),
        pytest.param(str(MAX_TIMESTAMP_S), MAX_TIMESTAMP_S, id="year-9999-string"),
        pytest.param(MAX_TIMESTAMP_S + 1, None, id="after-9999"),
        pytest.param(1e300, None, id="1e300"),
        pytest.param("9" * 5000, None, id="5000-digits"),
        pytest.param("9" * 21, None, id="21-digits"),
    ],
)
def test_timestamp_range_ends_at_the_year_9999(value: Any, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(MalformedWebhook, match="between 0 and"):
            classify(upsert_data(timestamp=value))
    else:
        assert classify(upsert_data(timestamp=value)).timestamp == expected  # type: ignore[union-attr]


@pytest.mark.parametrize("value", UNPARSEABLE_TIMESTAMPS)
def test_unparseable_timestamp_raises_malformed_webhook_not_a_crash(value: Any) -> None:
    with pytest.raises(MalformedWebhook):
        classify(upsert_data(timestamp=value))


# --------------------------------------------------------------------------- event names


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("messages-upsert", "messages.upsert"),
        ("/messages-upsert", "messages.upsert"),
        ("messages-upsert/", "messages.upsert"),
        ("connection-update", "connection.update"),
        ("qrcode-updated", "qrcode.updated"),
        ("send-message", "send.message"),
        ("MESSAGES_UPSERT", "messages.upsert"),
        ("messages.upsert", "messages.upsert"),
    ],
)
def test_event_path_segment_becomes_the_dotted_event_name(segment: str, expected: str) -> None:
    assert event_path_to_name(segment) == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("MESSAGES_UPSERT", "messages.upsert"),
        ("messages.upsert", "messages.upsert"),
        ("Messages.Upsert", "messages.upsert"),
        ("  MESSAGES_UPSERT\n", "messages.upsert"),
        ("CONNECTION_UPDATE", "connection.update"),
        ("QRCODE_UPDATED", "qrcode.updated"),
        ("messages-upsert", "messages.upsert"),
    ],
)
def test_event_names_are_normalized_to_the_dotted_lowercase_form(event: str, expected: str):
    assert normalize_event_name(event) == expected


# --------------------------------------------------------------------------- storable values
# Issue 7 point 8: values PostgreSQL cannot store used to reach it (500). A customer's words are
# kept (cleaned), identifiers are refused (never altered: key.id is the idempotency key).


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        pytest.param("oi\x00 tudo bem", "oi tudo bem", id="nul-dropped"),
        pytest.param("preço \ud83d", "preço \ufffd", id="lone-high-surrogate"),
        pytest.param("\udc00fim", "\ufffdfim", id="lone-low-surrogate"),
        pytest.param("emoji 😀 inteiro", "emoji 😀 inteiro", id="whole-emoji-kept"),
        pytest.param("\x00", "", id="only-nul"),
    ],
)
def test_text_is_stored_without_nul_or_lone_surrogates(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    assert classify(upsert_data({"conversation": f"{text} fim"})).text == f"{stored} fim".strip()  # type: ignore[union-attr]


def test_a_message_of_only_nul_is_empty_and_ignored() -> None:
    result = classify(upsert_data({"conversation": "\x00\x00"}))

    assert isinstance(result, Ignored)
    assert result.reason == "empty"


def test_push_name_and_message_type_are_cleaned_and_cut_to_their_columns() -> None:
    data = upsert_data({"x" * 300: {"caption": "legenda"}}, push_name="N\x00" + "a" * 500)
    data["messageType"] = "t" * 300

    result = classify(data)

    assert isinstance(result, CustomerText)
    assert result.push_name == "N" + "a" * (MAX_PUSH_NAME_CHARS - 1)
    assert result.message_type == "x" * MAX_MESSAGE_TYPE_CHARS


def test_a_phone_alt_that_is_not_a_jid_is_not_taken_as_the_chat() -> None:
    data = upsert_data(remote_jid=LID, key_extra={"remoteJidAlt": "5" * 500 + "@s.whatsapp.net"})

    assert classify(data).chat_jid == LID


@pytest.mark.parametrize(
    "jid",
    [
        PHONE,
        LID,
        GROUP,
        "5511999999999-1592345678@g.us",
        "status@broadcast",
        "120363000000000000@newsletter",
        "5511987654321:12@s.whatsapp.net",
        "123456789012345@hosted.lid",
    ],
)
def test_every_jid_form_evolution_posts_is_a_jid(jid: str) -> None:
    assert is_jid(jid)


@pytest.mark.parametrize(
    "value",
    [123, None, ["5511987654321@s.whatsapp.net"], {"jid": PHONE}, "١٢٣٤٥٦٧٨@s.whatsapp.net"],
)
def test_numero_of_anything_but_a_phone_jid_string_is_none(value: Any) -> None:
    assert numero_of(value) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{not json", "not valid JSON", id="bad-json"),
        pytest.param(b"[" * 200_000, "nested too deeply", id="200k-brackets"),
        pytest.param(b'{"a":' * 100_000, "nested too deeply", id="100k-objects"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="bad-utf"),
        pytest.param(b"9" * 5000, "not valid JSON", id="5000-digit-number"),
        pytest.param(b"", "not valid JSON", id="empty"),
    ],
)
def test_undecodable_body_is_invalid_json_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidJson, match=reason):
        decode_body(body)


def test_json_escapes_for_nul_and_lone_surrogates_decode_and_are_cleaned_later() -> None:
    payload = decode_body(b'{"t": "a\\u0000b\\ud800c"}')

    assert storable_text(payload["t"]) == "ab\ufffdc"
