//! A client and a server session talking to each other in one process, no sockets.

use bytes::Bytes;
use rtmp::amf0::{self, Value};
use rtmp::{ClientEvent, ClientSession, Config, Media, MediaKind, ServerEvent, ServerSession};

/// Moves bytes both ways until neither side has anything to send.
fn pump(client: &mut ClientSession, server: &mut ServerSession) {
    loop {
        let mut moved = false;
        while let Some(b) = client.poll_transmit() {
            server.handle_input(&b).unwrap();
            moved = true;
        }
        while let Some(b) = server.poll_transmit() {
            client.handle_input(&b).unwrap();
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

fn connect() -> (ClientSession, ServerSession) {
    let mut client = ClientSession::new(Config::default(), "live", "rtmp://127.0.0.1/live", [1; 1536]);
    let mut server = ServerSession::new(Config::default(), [2; 1536]);
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ServerEvent::Connect { app: "live".into() }));
    assert_eq!(client.poll_event(), Some(ClientEvent::Connected));
    (client, server)
}

#[test]
fn publish_is_accepted_and_media_arrives_with_metadata_unwrapped() {
    let (mut client, mut server) = connect();
    client.publish("key");
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ServerEvent::Publish { name: "key".into() }));
    server.accept_publish().unwrap();
    pump(&mut client, &mut server);
    assert_eq!(client.poll_event(), Some(ClientEvent::PublishStarted));

    let meta = amf0::encode_all(&[Value::string("@setDataFrame"), Value::string("onMetaData"), Value::Null]);
    client.send_media(MediaKind::Data, 0, &meta);
    let frame = vec![0x17; 10_000];
    client.send_media(MediaKind::Video, 0x0123_4567, &frame);
    client.unpublish("key");
    pump(&mut client, &mut server);
    let meta_out = amf0::encode_all(&[Value::string("onMetaData"), Value::Null]).freeze();
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Media(Media {
            kind: MediaKind::Data,
            timestamp: 0,
            payload: meta_out
        }))
    );
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Media(Media {
            kind: MediaKind::Video,
            timestamp: 0x0123_4567,
            payload: Bytes::from(frame)
        }))
    );
    assert_eq!(server.poll_event(), Some(ServerEvent::Unpublish));
}

#[test]
fn refused_publish_reaches_the_client_as_an_error_status() {
    let (mut client, mut server) = connect();
    client.publish("wrong");
    pump(&mut client, &mut server);
    assert!(matches!(server.poll_event(), Some(ServerEvent::Publish { .. })));
    server
        .reject_publish("NetStream.Publish.BadName", "unknown stream key")
        .unwrap();
    pump(&mut client, &mut server);
    match client.poll_event() {
        Some(ClientEvent::Status { level, code, .. }) => {
            assert_eq!(level, "error");
            assert_eq!(code, "NetStream.Publish.BadName");
        }
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[test]
fn a_player_receives_shared_media_encodings_and_the_end() {
    let (mut client, mut server) = connect();
    client.play("abc");
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ServerEvent::Play { name: "abc".into() }));
    server.accept_play().unwrap();
    pump(&mut client, &mut server);
    assert!(matches!(client.poll_event(), Some(ClientEvent::Status { code, .. }) if code == "NetStream.Play.Reset"));
    assert_eq!(client.poll_event(), Some(ClientEvent::PlayStarted));
    // The data message |RtmpSampleAccess comes as media.
    assert!(matches!(
        client.poll_event(),
        Some(ClientEvent::Media(Media {
            kind: MediaKind::Data,
            ..
        }))
    ));

    // The server writes pre-encoded media straight to the socket.
    let shared = rtmp::message::encode_media(server.out_chunk_size(), MediaKind::Audio, 40, b"\xaf\x01aac");
    client.handle_input(&shared).unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Media(Media {
            kind: MediaKind::Audio,
            timestamp: 40,
            payload: Bytes::from_static(b"\xaf\x01aac")
        }))
    );
    server.end_play();
    pump(&mut client, &mut server);
    match client.poll_event() {
        Some(ClientEvent::Status { code, .. }) => {
            assert_eq!(code, "NetStream.Play.UnpublishNotify")
        }
        other => panic!("expected the end of the stream, got {other:?}"),
    }
}

#[test]
fn garbage_after_the_handshake_is_an_error_not_a_panic() {
    let (_client, mut server) = connect();
    // A fmt 0 header claiming a command of 3 bytes that are not AMF0.
    let err = server
        .handle_input(&[0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 0xff, 0xff, 0xff])
        .unwrap_err();
    assert!(err.to_string().contains("AMF0"), "{err}");
}

#[test]
fn a_stranger_is_held_to_the_setup_limits_until_publish_is_accepted() {
    use bytes::BytesMut;
    use rtmp::chunk::{self, Limits};

    // A command larger than the setup limit, before any key was checked: refused as soon
    // as its header arrives, before its body is buffered.
    let (_client, mut server) = connect();
    let mut wire = BytesMut::new();
    let nulls = vec![5u8; Limits::SETUP.max_message_size as usize + 1];
    chunk::encode(&mut wire, 128, 3, 0, 20, 0, &nulls);
    assert!(matches!(
        server.handle_input(&wire[..200]),
        Err(rtmp::Error::MessageTooLarge { .. })
    ));

    // Endless small commands get no endless answers.
    let (_client, mut server) = connect();
    let mut wire = BytesMut::new();
    let create = amf0::encode_all(&[Value::string("createStream"), Value::Number(2.0), Value::Null]);
    for _ in 1..rtmp::MAX_SETUP_COMMANDS {
        // `connect` was the first.
        chunk::encode(&mut wire, 128, 3, 0, 20, 0, &create);
    }
    assert!(server.handle_input(&wire).is_ok());
    assert!(server.handle_input(&wire[..create.len() + 12]).is_err());
    assert!(server.buffered() < 16 << 10, "holds {} bytes", server.buffered());

    // Once accepted, a publisher may send a keyframe of a megabyte.
    let (mut client, mut server) = connect();
    client.publish("key");
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ServerEvent::Publish { name: "key".into() }));
    server.accept_publish().unwrap();
    pump(&mut client, &mut server);
    client.send_media(MediaKind::Video, 0, &vec![0x17; 1 << 20]);
    pump(&mut client, &mut server);
    assert!(matches!(server.poll_event(), Some(ServerEvent::Media(m)) if m.payload.len() == 1 << 20));
}

#[test]
fn media_in_the_same_read_as_publish_waits_for_the_answer() {
    let (mut client, mut server) = connect();
    client.publish("key");
    pump(&mut client, &mut server);
    assert_eq!(server.poll_event(), Some(ServerEvent::Publish { name: "key".into() }));
    // An encoder that does not wait for NetStream.Publish.Start: media while the server
    // is still checking the key.
    client.send_media(MediaKind::Video, 0, &[0x17; 20_000]);
    while let Some(b) = client.poll_transmit() {
        server.handle_input(&b).unwrap();
    }
    assert_eq!(server.poll_event(), None, "nothing is judged before the answer");
    server.accept_publish().unwrap();
    assert!(matches!(server.poll_event(), Some(ServerEvent::Media(m)) if m.payload.len() == 20_000));
}
