//! Media key expansion, encryption and decryption (the host does the HTTP).
