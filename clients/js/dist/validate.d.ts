import type { CreateThreadRequest, GetThreadRequest, GetUserTokenRequest, PageRequest, RefreshTokenRequest, SendMessageRequest, StopListeningRequest } from "./types.js";
export declare function checkGetUserToken(req: GetUserTokenRequest): void;
export declare function checkRefreshToken(req: RefreshTokenRequest): void;
export declare function checkPage(req: PageRequest | undefined, op: string): void;
export declare function checkCreateThread(req: CreateThreadRequest): void;
export declare function checkGetThread(req: GetThreadRequest): void;
export declare function checkSendMessage(req: SendMessageRequest): void;
export declare function checkStopListening(req: StopListeningRequest): void;
